"""Data-quality checks on a loaded partition: the suites pass on good data, fail on bad data
(naming the column and an example), and the rejection rate warns, then fails."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.ingest import load_bookings_day
from checks.partition import rejection_rate, run_suite

LANDING = Path(__file__).parents[1] / "fixtures" / "landing"
DAY = date(2026, 11, 25)


def test_bookings_suite_passes_on_a_clean_day(db: Engine) -> None:
    load_bookings_day(DAY, LANDING, db)
    outcome = run_suite(db, "bookings", DAY)
    assert outcome.passed, outcome.failures
    assert outcome.rows == 2


def test_bookings_suite_fails_on_what_slipped_through(db: Engine) -> None:
    load_bookings_day(DAY, LANDING, db)
    # What a parser bug would let through: a dossier without a client, in an unknown currency.
    with db.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO raw.booking_snapshots (dossier_number, version, updated_at, payload, file, line)
                   SELECT dossier_number, version + 10, updated_at,
                          (payload - 'client') || '{"currency": "XYZ"}'::jsonb, file, line
                   FROM raw.booking_snapshots LIMIT 1"""
            )
        )
    outcome = run_suite(db, "bookings", DAY)
    assert not outcome.passed
    failures = "\n".join(outcome.failures)
    assert "currency" in failures and "XYZ" in failures
    assert "client_id" in failures


def _landed(db: Engine, loaded: int, rejected: int) -> None:
    with db.begin() as conn:
        conn.execute(sa.text("DELETE FROM raw.landing_files"))
        conn.execute(
            sa.text(
                """INSERT INTO raw.landing_files
                   (source, path, sha256, partition_date, bytes, rows_loaded, rows_rejected)
                   VALUES ('payments', 'payments/2026-11-25/a.csv', 'x', :day, 10, :loaded, :rejected)"""
            ),
            {"day": DAY, "loaded": loaded, "rejected": rejected},
        )


def test_rejection_rate_warns_then_fails(db: Engine) -> None:
    _landed(db, 1000, 0)
    assert rejection_rate(db, "payments", DAY).severity == "ok"
    _landed(db, 980, 20)
    assert rejection_rate(db, "payments", DAY).severity == "warn"
    _landed(db, 900, 100)
    assert rejection_rate(db, "payments", DAY).severity == "fail"
    _landed(db, 20, 3)  # 13% of a quiet day: a warning, not a stopped pipeline
    assert rejection_rate(db, "payments", DAY).severity == "warn"
    assert rejection_rate(db, "payments", date(2026, 1, 1)).severity == "ok"  # nothing landed


def test_ingest_asset_reports_its_checks_to_dagster(db: Engine, database_url: str) -> None:
    import dagster as dg

    from assets.ingest_bookings import ingest_bookings
    from pipelines.resources import Database, LandingZone

    result = dg.materialize(
        [ingest_bookings],
        partition_key=DAY.isoformat(),
        resources={"database": Database(url=database_url), "landing": LandingZone(path=str(LANDING))},
        raise_on_error=True,
    )
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"bookings_expectations": True, "rejection_rate": True}
