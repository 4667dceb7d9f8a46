"""Load `<landing>/reference/suppliers.csv`, a full snapshot of the supplier reference.

raw.suppliers is replaced by the file's valid rows; app.suppliers is upserted (suppliers gone
from the file stay, since services and invoices may still name them). Parsed with the csv
module rather than polars because each bad row must be refused alone with its line number.
"""

from __future__ import annotations

import csv
import time
from datetime import date
from pathlib import Path

import psycopg
from sqlalchemy.engine import Engine

from backoffice.config import get_settings
from backoffice.db.engine import get_engine
from backoffice.domain.money import CURRENCIES
from backoffice.ingest import ledger
from backoffice.ingest.countries import COUNTRIES
from backoffice.ingest.files import LandingFile, read_landing_file
from backoffice.ingest.result import IngestResult

SOURCE = "suppliers"
COLUMNS = (
    "supplier_code",
    "name",
    "country",
    "vat_number",
    "iban",
    "currency",
    "payment_terms_days",
    "ledger_account",
)

STAGE = """
CREATE TEMP TABLE stage_supplier (
    supplier_code text, name text, country text, vat_number text, iban text, currency text,
    payment_terms_days integer, ledger_account text
) ON COMMIT DROP;
"""

MERGE = """
DELETE FROM raw.suppliers;
INSERT INTO raw.suppliers (supplier_code, name, country, vat_number, iban, currency, payment_terms_days,
                           ledger_account)
SELECT supplier_code, name, country, vat_number, iban, currency, payment_terms_days, ledger_account
FROM stage_supplier ORDER BY supplier_code;

INSERT INTO app.suppliers (supplier_code, name, country, vat_number, iban, currency, payment_terms_days,
                           ledger_account)
SELECT supplier_code, name, country, vat_number, iban, currency, payment_terms_days, ledger_account
FROM stage_supplier ORDER BY supplier_code
ON CONFLICT (supplier_code) DO UPDATE SET
    name = EXCLUDED.name, country = EXCLUDED.country, vat_number = EXCLUDED.vat_number,
    iban = EXCLUDED.iban, currency = EXCLUDED.currency,
    payment_terms_days = EXCLUDED.payment_terms_days, ledger_account = EXCLUDED.ledger_account;
"""


def suppliers_file(landing_dir: Path) -> Path:
    return landing_dir / "reference" / "suppliers.csv"


def load_suppliers(day: date, landing_dir: Path | None = None, engine: Engine | None = None) -> IngestResult:
    """Load the supplier reference if it changed since it was last loaded; `day` is the run's partition."""
    started = time.perf_counter()
    landing_dir = (landing_dir or get_settings().landing_dir).resolve()
    path = suppliers_file(landing_dir)
    files = [read_landing_file(path, landing_dir)] if path.is_file() else []
    loaded = rejected = 0
    engine = engine or get_engine()
    with engine.begin() as conn:
        pg: psycopg.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        with pg.cursor() as cur:
            ledger.lock_source(cur, SOURCE)
            done = ledger.already_loaded(cur, SOURCE, files)
            todo = [f for f in files if f.name not in done]
            for f in todo:
                rows, breaches = _parse(f)
                cur.execute(STAGE)
                cur.execute(ledger.CREATE_REJECTION_STAGE)
                with cur.copy(f"COPY stage_supplier ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                ledger.copy_rejections(cur, breaches)
                if rows:
                    # A file with no valid row is an export gone wrong, not "no suppliers any more".
                    cur.execute(MERGE)
                cur.execute(ledger.INSERT_REJECTIONS, {"source": SOURCE})
                loaded, rejected = len(rows), len(breaches)
                ledger.record_files(cur, SOURCE, day, [(f, loaded, rejected)])
    return IngestResult(
        source=SOURCE,
        files=len(files),
        files_skipped=len(done),
        rows_loaded=loaded,
        rows_unchanged=sum(done.values()),
        rows_rejected=rejected,
        bytes=sum(f.size for f in files),
        duration_s=round(time.perf_counter() - started, 3),
    )


def _parse(f: LandingFile) -> tuple[list[tuple[object, ...]], list[ledger.Rejection]]:
    if f.unreadable is not None:
        return [], [(f.name, None, None, f.unreadable)]
    assert f.text is not None
    reader = csv.DictReader(f.text.splitlines(), strict=True)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        return [], [(f.name, 1, None, f"header: missing column(s) {', '.join(missing)}")]
    rows: list[tuple[object, ...]] = []
    breaches: list[ledger.Rejection] = []
    seen: set[str] = set()
    try:
        for record in reader:
            line = reader.line_num
            code = (record.get("supplier_code") or "").strip()
            problems = _check(record, code, seen)
            if problems:
                breaches.append((f.name, line, code or None, "; ".join(problems)))
                continue
            seen.add(code)
            rows.append(
                (
                    code,
                    record["name"].strip(),
                    record["country"],
                    record["vat_number"] or None,
                    record["iban"] or None,
                    record["currency"],
                    int(record["payment_terms_days"]),
                    record["ledger_account"].strip(),
                )
            )
    except csv.Error as exc:
        return [], [(f.name, reader.line_num, None, f"not valid CSV: {exc}")]
    return rows, breaches


def _check(record: dict[str, str | None], code: str, seen: set[str]) -> list[str]:
    if None in record.values() or None in record:
        return ["row: wrong number of columns"]
    problems = []
    if not code:
        problems.append("supplier_code: is required")
    elif code in seen:
        problems.append(f"supplier_code: {code!r} appears twice in the file")
    if not (record["name"] or "").strip():
        problems.append("name: is required")
    if record["country"] not in COUNTRIES:
        problems.append(f"country: {record['country']!r} is not an ISO 3166 alpha-2 country code")
    if record["currency"] not in CURRENCIES:
        problems.append(f"currency: {record['currency']!r} is not an ISO 4217 currency code")
    terms = record["payment_terms_days"] or ""
    if not terms.isdigit():
        problems.append(f"payment_terms_days: {terms!r} is not a whole number of days")
    if not (record["ledger_account"] or "").strip().startswith("401"):
        problems.append(f"ledger_account: {record['ledger_account']!r} is not a 401 supplier account")
    return problems
