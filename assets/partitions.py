"""The daily partitions every ingest asset shares: one per landing day, Paris time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
import sqlalchemy as sa

# Partitions reach a year ahead: generated demo data and tests use future dates, and a
# partition with no landing files simply loads nothing.
daily = dg.DailyPartitionsDefinition(start_date="2020-01-01", timezone="Europe/Paris", end_offset=366)

# One run per day in a backfill: a day's load compares versions with what earlier days applied,
# so days must not be merged into one run (run_days also runs them in date order).
one_run_per_day = dg.BackfillPolicy.multi_run(1)

# A lost connection or a restarting database fails a load whole (one transaction), so trying
# again is safe. Only those faults are retried: a bug or a missing folder fails at once rather
# than three times, and contract breaches never raise (they are rejections).
TRANSIENT = (sa.exc.OperationalError, sa.exc.InterfaceError, psycopg.OperationalError)


@contextmanager
def retried_if_transient(max_retries: int = 3, seconds_to_wait: float = 10) -> Iterator[None]:
    try:
        yield
    except TRANSIENT as exc:
        raise dg.RetryRequested(max_retries=max_retries, seconds_to_wait=seconds_to_wait) from exc
