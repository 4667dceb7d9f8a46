"""raw.landing_files and raw.rejections: what was read, and what could not load.

A file already recorded with the same path and sha256 is skipped whole: its records are
in the database already, so re-running a day costs a directory listing and a checksum.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING

from backoffice.ingest.files import LandingFile

if TYPE_CHECKING:  # only annotations here; the booking parser's worker imports this module without psycopg
    import psycopg

Rejection = tuple[str, int | None, str | None, str]  # file, line, record_key, reason

# Rejections of a load are staged in the transaction, then recorded once the merge has added
# its own (stale versions, conflicting re-sends).
CREATE_REJECTION_STAGE = """
CREATE TEMP TABLE stage_rejection (
    file       text NOT NULL,
    line       integer,
    record_key text,
    reason     text NOT NULL
) ON COMMIT DROP;
"""

INSERT_REJECTIONS = """
INSERT INTO raw.rejections (source, file, line, record_key, reason)
SELECT %(source)s, file, line, record_key, reason
FROM stage_rejection
ORDER BY file, line NULLS FIRST
ON CONFLICT DO NOTHING;
"""


def lock_source(cur: psycopg.Cursor, source: str) -> None:
    """Serialise loads of one source: two runs of the same day must not interleave."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"backoffice.ingest.{source}",))


def already_loaded(cur: psycopg.Cursor, source: str, files: list[LandingFile]) -> dict[str, int]:
    """Files loaded before with the same content, and how many records they loaded then."""
    cur.execute(
        "SELECT path, rows_loaded FROM raw.landing_files WHERE source = %s AND (path, sha256) IN "
        "(SELECT * FROM unnest(%s::text[], %s::text[]))",
        (source, [f.name for f in files], [f.sha256 for f in files]),
    )
    return dict(cur.fetchall())


def record_files(cur: psycopg.Cursor, source: str, day: date, files: Iterable[tuple[LandingFile, int, int]]) -> None:
    """One row per file read: (file, rows loaded, rows rejected)."""
    rows = [(source, f.name, f.sha256, day, f.size, loaded, rejected) for f, loaded, rejected in files]
    cur.executemany(
        "INSERT INTO raw.landing_files (source, path, sha256, partition_date, bytes, rows_loaded, rows_rejected)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        rows,
    )


def copy_rejections(cur: psycopg.Cursor, rejections: Iterable[Rejection]) -> dict[str, int]:
    """Into the transaction's `stage_rejection` table; returns how many per file."""
    per_file: dict[str, int] = {}
    with cur.copy("COPY stage_rejection (file, line, record_key, reason) FROM STDIN") as copy:
        for row in rejections:
            copy.write_row(row)
            per_file[row[0]] = per_file.get(row[0], 0) + 1
    return per_file
