"""Load one day of booking snapshots: `<landing>/bookings/<YYYY-MM-DD>/*.jsonl`.

Every line is checked on its own against the contract (booking_contract) and turned into the
COPY text of the rows it writes (booking_rows); rejections go to raw.rejections. Each row is
written once: a quick first pass counts the dossiers the day names, one query reads what the
database holds of them, and each valid snapshot is then sorted in this process (booking_sort):
new dossiers delivered once, nearly all of a day, are COPYed straight into raw.* and app.*; a
dossier already stored or delivered twice goes through typed stage tables and the set-based
merge (booking_merge). All in one transaction, under the source's lock: a crash leaves the day
loaded or untouched. Files are read line by line and parsed `BATCH_LINES` at a time, so what a
load holds of a day is one batch plus a few small keys per dossier; on a large day the parsing
runs in a worker process, one batch ahead of the COPY. Lines are parsed one by one rather than
with polars because each must be refused alone, with its line number and every breach named,
while the rest of the file loads.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg
from sqlalchemy.engine import Engine

from backoffice.config import get_settings
from backoffice.db.engine import get_engine
from backoffice.ingest import booking_merge, booking_rows, ledger
from backoffice.ingest.booking_sort import DaySort
from backoffice.ingest.day_load import load_day
from backoffice.ingest.files import LandingFile, scan_landing_file
from backoffice.ingest.result import IngestResult

SOURCE = "bookings"
BATCH_LINES = 5_000  # lines parsed, then COPYed, at a time: what a load holds of a day's rows
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
    """COPY the valid snapshots (into their tables or the stage tables) and the breaches, batch by batch.

    Returns the number of lines (or whole files) rejected per file.
    """
    unreadable = [(f.name, None, None, f.unreadable) for f in files if f.unreadable is not None]
    rejected = ledger.copy_rejections(cur, unreadable) if unreadable else {}
    readable = [f for f in files if f.unreadable is None]
    with _parsed(readable) as batches:
        day = DaySort(cur, booking_rows.dossier_counts(readable))  # while the worker parses the first batch
        for batch in batches:
            direct, staged = day.place(batch.snaps)
            for table, rows in direct.items():
                _copy(cur, table, booking_merge.TARGETS[table], rows)
            for table, rows in staged.items():
                _copy(cur, booking_merge.STAGES[table], ("snap", *booking_merge.TARGETS[table]), rows)
            if batch.breaches:
                for name, count in ledger.copy_rejections(cur, batch.breaches).items():
                    rejected[name] = rejected.get(name, 0) + count
        day.record(cur)
    return rejected


def _copy(cur: psycopg.Cursor, table: str, columns: tuple[str, ...], rows: list[str]) -> None:
    if not rows:
        return
    data = ("\n".join(rows) + "\n").encode()
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for start in range(0, len(data), COPY_CHUNK):
            copy.write(data[start : start + COPY_CHUNK])


@contextmanager
def _parsed(files: list[LandingFile]) -> Iterator[Iterator[booking_rows.Parsed]]:
    """The batches of `booking_rows.parsed_batches`: parsed here for a small day, else in a worker
    process started at once, so it parses while this one counts the dossiers and reads their state.

    A fresh interpreter rather than a fork (this process holds a database connection and may
    run threads) or multiprocessing's spawn (which would import this program's main module).
    """
    if sum(f.size for f in files) < WORKER_BYTES:
        yield booking_rows.parsed_batches(files, BATCH_LINES)
        return
    worker = subprocess.Popen(
        [sys.executable, "-m", "backoffice.ingest.booking_rows"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert worker.stdin is not None and worker.stdout is not None
    try:
        pickle.dump((files, BATCH_LINES), worker.stdin)
        worker.stdin.close()
        yield _received(worker)
    finally:
        worker.stdout.close()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _received(worker: subprocess.Popen[bytes]) -> Iterator[booking_rows.Parsed]:
    assert worker.stdout is not None
    while True:
        try:
            kind, payload = pickle.load(worker.stdout)
        except EOFError:
            raise RuntimeError(f"the booking parser process ended unexpectedly (exit code {worker.wait()})") from None
        if kind == "done":
            return
        if kind == "error":
            raise RuntimeError(f"the booking parser process failed: {payload}")
        yield booking_rows.Parsed(*payload)
