"""Load one day of payments: `<landing>/payments/<YYYY-MM-DD>/*.csv`.

Every record is checked on its own against the contract (payment_contract); valid payments are
COPYed into a staging table and merged with set-based SQL (payment_merge), rejections go to
raw.rejections, all in one transaction: a crash leaves the day loaded or untouched.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psycopg
from sqlalchemy.engine import Engine

from backoffice.config import get_settings
from backoffice.db.engine import get_engine
from backoffice.ingest import ledger, payment_merge
from backoffice.ingest.booking_contract import ContractBreach
from backoffice.ingest.csv_records import read_csv
from backoffice.ingest.day_load import load_day
from backoffice.ingest.files import LandingFile, read_landing_file
from backoffice.ingest.payment_contract import COLUMNS, parse_payment
from backoffice.ingest.result import IngestResult

SOURCE = "payments"


def day_folder(landing_dir: Path, day: date) -> Path:
    return landing_dir / SOURCE / day.isoformat()


def load_payments_day(day: date, landing_dir: Path | None = None, engine: Engine | None = None) -> IngestResult:
    """Load the day's payment files into raw.payments and app.payments."""
    landing_dir = (landing_dir or get_settings().landing_dir).resolve()
    paths = sorted(p for p in day_folder(landing_dir, day).glob("*") if p.suffix.lower() == ".csv" and p.is_file())
    return load_day(
        SOURCE,
        day,
        lambda: [read_landing_file(path, landing_dir) for path in paths],
        _stage,
        payment_merge,
        engine or get_engine(),
    )


def _stage(cur: psycopg.Cursor, files: list[LandingFile]) -> dict[str, int]:
    """COPY valid payments into stage_payment and breaches into stage_rejection.

    Returns the number of records (or whole files) rejected per file.
    """
    rejections: list[ledger.Rejection] = []
    with cur.copy(f"COPY stage_payment ({', '.join(COLUMNS)}, file, line) FROM STDIN") as copy:
        for f in files:
            csv_file = read_csv(f, COLUMNS)
            rejections += csv_file.rejections
            for record in csv_file.records:
                try:
                    payment = parse_payment(record.fields)
                except ContractBreach as breach:
                    rejections.append((f.name, record.line, breach.record_key, breach.reason))
                    continue
                copy.write_row((*payment.row(), f.name, record.line))
    return ledger.copy_rejections(cur, rejections)
