"""Only transient database faults are retried; anything else fails the step at once."""

import dagster as dg
import psycopg
import pytest
import sqlalchemy as sa

from assets.partitions import retried_if_transient


def test_a_lost_connection_asks_dagster_to_retry() -> None:
    with pytest.raises(dg.RetryRequested) as retry, retried_if_transient(max_retries=2, seconds_to_wait=1):
        raise psycopg.OperationalError("server closed the connection unexpectedly")
    assert retry.value.max_retries == 2
    with pytest.raises(dg.RetryRequested), retried_if_transient():
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("terminating connection"))


def test_a_bug_is_not_retried() -> None:
    with pytest.raises(IsADirectoryError), retried_if_transient():
        raise IsADirectoryError("landing/bookings/2026-11-25/x.jsonl")
