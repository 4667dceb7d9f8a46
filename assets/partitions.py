"""The daily partitions every ingest asset shares: one per landing day, Paris time."""

from __future__ import annotations

import dagster as dg

# Partitions reach a year ahead: generated demo data and tests use future dates, and a
# partition with no landing files simply loads nothing.
daily = dg.DailyPartitionsDefinition(start_date="2020-01-01", timezone="Europe/Paris", end_offset=366)

# One run per day in a backfill: a day's load compares versions with what earlier days applied,
# so days must not be merged into one run (run_days also runs them in date order).
one_run_per_day = dg.BackfillPolicy.multi_run(1)
