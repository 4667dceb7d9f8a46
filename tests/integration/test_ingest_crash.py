"""Crash safety: a load killed with SIGKILL in the middle of a day leaves the day untouched, and
the re-run gives exactly what a clean run gives. Not an injected exception: a real process,
killed while PostgreSQL is receiving its COPY."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.generator import generate
from backoffice.ingest import load_bookings_day, load_suppliers

DAY = date(2026, 3, 2)
TABLES = {
    "raw.booking_snapshots": "dossier_number, version, updated_at, payload, file, line",
    "raw.landing_files": "source, path, sha256, partition_date, bytes, rows_loaded, rows_rejected",
    "raw.rejections": "source, file, line, record_key, reason",
    "app.dossiers": "dossier_number, platform_version, status, sale_total, client_last_name",
    "app.price_lines": "dossier_number, booking_version, line_id, quantity, unit_sale_amount, unit_purchase_amount",
}
LOAD = (
    "import sys, datetime, pathlib; from backoffice.ingest import load_bookings_day; "
    "load_bookings_day(datetime.date.fromisoformat(sys.argv[1]), pathlib.Path(sys.argv[2]))"
)


def _dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {
            t: [tuple(r) for r in conn.execute(sa.text(f"SELECT {c} FROM {t} ORDER BY 1, 2, 3"))]
            for t, c in TABLES.items()
        }


def _copy_in_progress(engine: Engine) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(
                sa.text(
                    """SELECT count(*) FROM pg_stat_activity
                       WHERE datname = current_database() AND query LIKE 'COPY raw.booking_snapshots%'"""
                )
            ).scalar_one()
            > 0
        )


def test_a_load_killed_mid_copy_leaves_nothing_and_the_rerun_equals_a_clean_run(
    db: Engine, database_url: str, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    generate(landing, DAY, 1, 2500, seed=5)
    load_suppliers(DAY, landing, db)
    before = _dump(db)

    proc = subprocess.Popen(
        [sys.executable, "-c", LOAD, DAY.isoformat(), str(landing)],
        env={**os.environ, "DATABASE_URL": database_url},
    )
    deadline = time.monotonic() + 120
    while not _copy_in_progress(db):
        assert proc.poll() is None, "the load ended before it could be killed: give it more rows"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    # PostgreSQL rolls back the dead connection's transaction: the day is untouched.
    deadline = time.monotonic() + 30
    while _copy_in_progress(db) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _dump(db) == before

    load_bookings_day(DAY, landing, db)
    after_rerun = _dump(db)
    assert len(after_rerun["app.dossiers"]) >= 2500

    with db.begin() as conn:
        conn.execute(sa.text("TRUNCATE raw.booking_snapshots, raw.rejections, app.dossiers CASCADE"))
        conn.execute(sa.text("DELETE FROM raw.landing_files WHERE source = 'bookings'"))
    load_bookings_day(DAY, landing, db)
    assert _dump(db) == after_rerun
