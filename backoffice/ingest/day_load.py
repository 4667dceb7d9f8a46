"""The one transaction of a day's load, shared by every daily source.

Lock the source, skip the files already loaded with the same content, stage what is new (the
source's parser COPYs valid records into its temp table and says what it rejected), run the
source's set-based merge, record the rejections and the files: all of it or none of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Protocol

import psycopg
from sqlalchemy.engine import Engine

from backoffice.ingest import ledger
from backoffice.ingest.files import LandingFile
from backoffice.ingest.result import IngestResult


class MergeSql(Protocol):
    """What a source's merge module holds (booking_merge, payment_merge, invoice_merge)."""

    CREATE_STAGE: str
    MERGE: Sequence[str]
    COUNTS_PER_FILE: str  # rows: file, loaded, refused at merge (stale, conflicting), unchanged


# (cursor, files to load) -> records rejected per file, after COPYing the valid ones.
Stage = Callable[[psycopg.Cursor, list[LandingFile]], dict[str, int]]


def load_day(
    source: str,
    day: date,
    read_files: Callable[[], list[LandingFile]],
    stage: Stage,
    merge: MergeSql,
    engine: Engine,
) -> IngestResult:
    started = time.perf_counter()
    with engine.begin() as conn:
        pg: psycopg.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        with pg.cursor() as cur:
            cur.execute("SET LOCAL TimeZone = 'UTC'")
            ledger.lock_source(cur, source)
            files = read_files()
            done = ledger.already_loaded(cur, source, files)
            todo = [f for f in files if f.name not in done]
            cur.execute(ledger.CREATE_REJECTION_STAGE)
            cur.execute(merge.CREATE_STAGE)
            rejected = stage(cur, todo)
            for statement in merge.MERGE:
                cur.execute(statement)
            cur.execute(merge.COUNTS_PER_FILE)
            counts = {file: (loaded, refused, unchanged) for file, loaded, refused, unchanged in cur.fetchall()}
            cur.execute(ledger.INSERT_REJECTIONS, {"source": source})
            per_file = []
            for f in todo:
                loaded, refused, _ = counts.get(f.name, (0, 0, 0))
                per_file.append((f, loaded, refused + rejected.get(f.name, 0)))
            ledger.record_files(cur, source, day, per_file)
    return IngestResult(
        source=source,
        files=len(files),
        files_skipped=len(done),
        rows_loaded=sum(c[0] for c in counts.values()),
        rows_unchanged=sum(c[2] for c in counts.values()) + sum(done.values()),
        rows_rejected=sum(rejected.values()) + sum(c[1] for c in counts.values()),
        bytes=sum(f.size for f in files),
        duration_s=round(time.perf_counter() - started, 3),
    )
