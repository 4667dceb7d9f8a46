"""Load one day of payments: `<landing>/payments/<YYYY-MM-DD>/*.csv`.

Every record is checked on its own against the contract (payment_contract); valid payments are
COPYed into a staging table and merged with set-based SQL (payment_merge), rejections go to
raw.rejections, all in one transaction: a crash leaves the day loaded or untouched.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import psycopg
from sqlalchemy.engine import Engine

from backoffice.config import get_settings
from backoffice.db.engine import get_engine
from backoffice.ingest import ledger, payment_merge
from backoffice.ingest.booking_contract import ContractBreach
from backoffice.ingest.csv_records import read_csv
from backoffice.ingest.files import LandingFile, read_landing_file
from backoffice.ingest.payment_contract import COLUMNS, parse_payment
from backoffice.ingest.result import IngestResult

SOURCE = "payments"


def day_folder(landing_dir: Path, day: date) -> Path:
    return landing_dir / SOURCE / day.isoformat()


def load_payments_day(day: date, landing_dir: Path | None = None, engine: Engine | None = None) -> IngestResult:
    """Load the day's payment files into raw.payments and app.payments."""
    started = time.perf_counter()
    landing_dir = (landing_dir or get_settings().landing_dir).resolve()
    paths = sorted(p for p in day_folder(landing_dir, day).glob("*") if p.suffix.lower() == ".csv" and p.is_file())
    engine = engine or get_engine()
    with engine.begin() as conn:
        pg: psycopg.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        with pg.cursor() as cur:
            cur.execute("SET LOCAL TimeZone = 'UTC'")
            ledger.lock_source(cur, SOURCE)
            files = [read_landing_file(path, landing_dir) for path in paths]
            done = ledger.already_loaded(cur, SOURCE, files)
            todo = [f for f in files if f.name not in done]
            cur.execute(payment_merge.CREATE_STAGE)
            breaches = _stage(cur, todo)
            for statement in payment_merge.MERGE:
                cur.execute(statement)
            cur.execute(payment_merge.COUNTS_PER_FILE)
            counts = {file: (loaded, conflicts, unchanged) for file, loaded, conflicts, unchanged in cur.fetchall()}
            cur.execute(payment_merge.INSERT_REJECTIONS, {"source": SOURCE})
            per_file = []
            for f in todo:
                loaded, conflicts, _ = counts.get(f.name, (0, 0, 0))
                per_file.append((f, loaded, conflicts + breaches.get(f.name, 0)))
            ledger.record_files(cur, SOURCE, day, per_file)
    return IngestResult(
        source=SOURCE,
        files=len(files),
        files_skipped=len(done),
        rows_loaded=sum(c[0] for c in counts.values()),
        rows_unchanged=sum(c[2] for c in counts.values()) + sum(done.values()),
        rows_rejected=sum(breaches.values()) + sum(c[1] for c in counts.values()),
        bytes=sum(f.size for f in files),
        duration_s=round(time.perf_counter() - started, 3),
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
    ledger.copy_rejections(cur, rejections)
    per_file: dict[str, int] = {}
    for name, *_ in rejections:
        per_file[name] = per_file.get(name, 0) + 1
    return per_file
