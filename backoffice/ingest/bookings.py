"""Load one day of booking snapshots: `<landing>/bookings/<YYYY-MM-DD>/*.jsonl`.

Every line is checked on its own against the contract (booking_contract); valid snapshots
are split into typed rows, one stage table per target (the snapshot, its travellers, services,
price lines and payment schedule: booking_rows), COPYed batch by batch and merged with
set-based SQL (booking_merge); rejections go to raw.rejections. All in one transaction: a crash
leaves the day loaded or untouched. Files are read line by line and staged `BATCH_LINES` at a
time, so the memory a load needs does not grow with the day (a day of a million snapshots is
~2.4 GB); on a large day the parsing runs in a worker process, one batch ahead of the COPY.
Lines are parsed one by one rather than with polars because each must be refused alone, with
its line number, while the rest of the file loads.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
from sqlalchemy.engine import Engine

from backoffice.config import get_settings
from backoffice.db.engine import get_engine
from backoffice.ingest import booking_merge, booking_rows, ledger
from backoffice.ingest.day_load import load_day
from backoffice.ingest.files import LandingFile, scan_landing_file
from backoffice.ingest.result import IngestResult

SOURCE = "bookings"
BATCH_LINES = 5_000  # lines parsed, then COPYed, at a time: what a load holds of a day
# From this many bytes in a day, lines are parsed in a worker process while this one streams COPY;
# below, the ~0.5 s a worker takes to start is more than it saves.
WORKER_BYTES = 8 << 20
COPY_CHUNK = 1 << 20


def day_folder(landing_dir: Path, day: date) -> Path:
    return landing_dir / SOURCE / day.isoformat()


def load_bookings_day(day: date, landing_dir: Path | None = None, engine: Engine | None = None) -> IngestResult:
    """Load the day's booking files into raw.booking_snapshots and the app.* dossier tables."""
    landing_dir = (landing_dir or get_settings().landing_dir).resolve()
    paths = sorted(day_folder(landing_dir, day).glob("*.jsonl"))
    return load_day(
        SOURCE,
        day,
        lambda: [scan_landing_file(path, landing_dir) for path in paths],
        _stage,
        booking_merge,
        engine or get_engine(),
    )


def _stage(cur: psycopg.Cursor, files: list[LandingFile]) -> dict[str, int]:
    """COPY valid snapshots into the stage tables and breaches into stage_rejection, batch by batch.

    Returns the number of lines (or whole files) rejected per file.
    """
    unreadable = [(f.name, None, None, f.unreadable) for f in files if f.unreadable is not None]
    rejected = ledger.copy_rejections(cur, unreadable) if unreadable else {}
    readable = [f for f in files if f.unreadable is None]
    in_worker = sum(f.size for f in readable) >= WORKER_BYTES
    for batch in _in_worker(readable) if in_worker else booking_rows.staged_batches(readable, BATCH_LINES):
        for table, data in batch.copy.items():
            columns = ", ".join(booking_rows.TABLES[table])
            with cur.copy(f"COPY {table} (snap, {columns}) FROM STDIN") as copy:
                for start in range(0, len(data), COPY_CHUNK):
                    copy.write(data[start : start + COPY_CHUNK])
        if batch.breaches:
            for name, count in ledger.copy_rejections(cur, batch.breaches).items():
                rejected[name] = rejected.get(name, 0) + count
    return rejected


def _in_worker(files: list[LandingFile]) -> Iterator[booking_rows.Staged]:
    """The batches of `booking_rows.staged_batches`, parsed in a worker process.

    A fresh interpreter rather than a fork (this process holds a database connection and may
    run threads) or multiprocessing's spawn (which would import this program's main module).
    """
    worker = subprocess.Popen(
        [sys.executable, "-m", "backoffice.ingest.booking_rows"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert worker.stdin is not None and worker.stdout is not None
    try:
        pickle.dump((files, BATCH_LINES), worker.stdin)
        worker.stdin.close()
        while True:
            try:
                kind, payload = pickle.load(worker.stdout)
            except EOFError:
                raise RuntimeError(
                    f"the booking parser process ended unexpectedly (exit code {worker.wait()})"
                ) from None
            if kind == "done":
                return
            if kind == "error":
                raise RuntimeError(f"the booking parser process failed: {payload}")
            yield booking_rows.Staged(*payload)
    finally:
        worker.stdout.close()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
