"""Load one day of booking snapshots: `<landing>/bookings/<YYYY-MM-DD>/*.jsonl`.

Every line is checked on its own against the contract (booking_contract); valid snapshots
are COPYed into a staging table and merged with set-based SQL (booking_merge), rejections
go to raw.rejections, all in one transaction: a crash leaves the day loaded or untouched.
Lines are parsed one by one rather than with polars because each must be refused alone,
with its line number, while the rest of the file loads.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import psycopg
from sqlalchemy.engine import Engine

from backoffice.config import get_settings
from backoffice.db.engine import get_engine
from backoffice.ingest import booking_merge, ledger
from backoffice.ingest.booking_contract import ContractBreach, parse_snapshot
from backoffice.ingest.day_load import load_day
from backoffice.ingest.files import LandingFile, read_landing_file
from backoffice.ingest.result import IngestResult

SOURCE = "bookings"


def day_folder(landing_dir: Path, day: date) -> Path:
    return landing_dir / SOURCE / day.isoformat()


def load_bookings_day(day: date, landing_dir: Path | None = None, engine: Engine | None = None) -> IngestResult:
    """Load the day's booking files into raw.booking_snapshots and the app.* dossier tables."""
    landing_dir = (landing_dir or get_settings().landing_dir).resolve()
    paths = sorted(day_folder(landing_dir, day).glob("*.jsonl"))
    return load_day(
        SOURCE,
        day,
        lambda: [read_landing_file(path, landing_dir) for path in paths],
        _stage,
        booking_merge,
        engine or get_engine(),
    )


def _stage(cur: psycopg.Cursor, files: list[LandingFile]) -> dict[str, int]:
    """COPY valid snapshots into stage_booking and breaches into stage_rejection.

    Returns the number of lines (or whole files) rejected per file.
    """
    breaches: list[ledger.Rejection] = []
    with cur.copy(
        "COPY stage_booking (dossier_number, version, updated_at, payload, doc, file, line) FROM STDIN"
    ) as copy:
        for f in files:
            if f.unreadable is not None:
                breaches.append((f.name, None, None, f.unreadable))
                continue
            lines = f.lines()
            for number, line in lines:
                try:
                    snap = parse_snapshot(line)
                except ContractBreach as breach:
                    reason = breach.reason
                    if number == lines[-1][0] and not f.text.endswith("\n") and reason.startswith("not valid JSON"):
                        reason += " (the file looks truncated: its last line has no end)"
                    breaches.append((f.name, number, breach.record_key, reason))
                    continue
                copy.write_row(
                    (
                        snap.dossier_number,
                        snap.version,
                        snap.updated_at,
                        line,
                        orjson.dumps(snap.doc).decode(),
                        f.name,
                        number,
                    )
                )
    return ledger.copy_rejections(cur, breaches)
