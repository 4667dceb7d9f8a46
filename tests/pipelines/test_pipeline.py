"""`backoffice pipeline run` end to end: Dagster in-process, ingestion, dbt build, the Devis mart.

Runs go to a persistent Dagster instance stored in a database of the session's own on the
test server, so this also covers the instance configuration (dagster-postgres).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from unittest import mock

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from typer.testing import CliRunner

from backoffice.cli import app
from backoffice.config import get_settings
from pipelines.run import run_days

LANDING = Path(__file__).parents[1] / "fixtures" / "landing"

DEVIS = """SELECT line_key, service_id, service_status, origin, label, quantity, sale_total, purchase_total,
                  purchase_currency, is_active, sort_order
           FROM marts.dossier_price_lines WHERE dossier_number = :number ORDER BY sort_order"""


@pytest.fixture(scope="session")
def dagster_database(database_url: str) -> Iterator[str]:
    """Dagster's storage database for the session (its own: it brings its own alembic history)."""
    name = f"{make_url(database_url).database}_dagster"
    yield name
    admin = sa.create_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pipeline_env(db: Engine, dagster_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    landing = tmp_path / "landing"
    shutil.copytree(LANDING, landing)
    monkeypatch.setenv("BACKOFFICE_LANDING_DIR", str(landing))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("BACKOFFICE_DAGSTER_DATABASE", dagster_database)
    get_settings.cache_clear()
    yield landing
    get_settings.cache_clear()


def devis(engine: Engine, number: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(DEVIS), {"number": number})]


def test_pipeline_run_loads_a_day_and_builds_the_devis(pipeline_env: Path, db: Engine) -> None:
    result = CliRunner().invoke(app, ["pipeline", "run", "--date", "2026-11-25"])

    assert result.exit_code == 0, result.output
    assert "bookings: 2 loaded, 0 skipped, 0 rejected (1 files read, " in result.stdout
    assert "suppliers: 3 loaded, 0 skipped, 1 rejected (1 files read, " in result.stdout
    assert "0 failed" in result.stdout
    instance_config = pipeline_env.parent / "dagster" / "dagster.yaml"
    assert "postgresql+psycopg2" in instance_config.read_text()
    assert instance_config.stat().st_mode & 0o077 == 0  # it holds the database password
    assert devis(db, "BK-2026-000001") == [
        (mock.ANY, "S1", "confirmed", "booking", "Adult fare", 1, Decimal("450.00"), Decimal("400.00"), "EUR", True, 1),
        (mock.ANY, "S1", "confirmed", "booking", "Child fare", 1, Decimal("350.00"), Decimal("310.00"), "EUR", True, 2),
        (
            mock.ANY,
            "S2",
            "confirmed",
            "booking",
            "Double room, breakfast",
            7,
            Decimal("650.02"),
            Decimal("563.50"),
            "MAD",
            True,
            3,
        ),
    ]


def test_a_second_version_replaces_the_devis_lines(pipeline_env: Path, db: Engine) -> None:
    # Day 2 brings version 2 of dossier 1 (hotel cancelled, insurance added); day 3 a late
    # export whose version 2 of dossier 2 is older than the version 3 already applied.
    summary = run_days(date(2026, 11, 25), date(2026, 11, 27), instance=dg.DagsterInstance.ephemeral())

    assert len(summary.run_ids) == 3 and summary.checks_failed == 0
    bookings = summary.sources["bookings"]
    assert (bookings.loaded, bookings.unchanged, bookings.rejected) == (5, 1, 1)
    lines = devis(db, "BK-2026-000001")
    assert [(r[1], r[2], r[4], r[9], r[10]) for r in lines] == [
        ("S1", "confirmed", "Adult fare", True, 1),
        ("S1", "confirmed", "Child fare", True, 2),
        ("S2", "cancelled", "Double room, breakfast", False, 3),
        ("S3", "confirmed", "Insurance premium", True, 4),
    ]
    with db.connect() as conn:
        version_two_ids = (
            conn.execute(
                sa.text(
                    "SELECT id::text FROM app.price_lines WHERE dossier_number = 'BK-2026-000001'"
                    " AND booking_version = 2 ORDER BY line_id"
                )
            )
            .scalars()
            .all()
        )
    assert [r[0] for r in lines] == version_two_ids  # the current version's lines, not version 1's
    assert [r[3] for r in devis(db, "BK-2026-000002")] == ["booking"]


def test_a_failing_day_exits_non_zero_with_a_one_line_reason(pipeline_env: Path) -> None:
    (pipeline_env / "bookings" / "2026-11-25" / "stuck.jsonl").mkdir()  # a folder where a file should be

    result = CliRunner().invoke(app, ["pipeline", "run", "--date", "2026-11-25"])

    assert result.exit_code == 1
    reason = result.stderr.strip().splitlines()[-1]
    assert reason.startswith("error: 2026-11-25: step ingest_bookings failed:")
    assert "stuck.jsonl" in reason


def test_a_range_backwards_is_refused() -> None:
    result = CliRunner().invoke(app, ["pipeline", "run", "--from", "2026-11-26", "--to", "2026-11-25"])

    assert result.exit_code == 1
    assert "before" in result.stderr
