"""Load one day of supplier invoices: `<landing>/supplier_invoices/<YYYY-MM-DD>/*.csv|*.xml|*.pdf`.

CSV, UBL 2.1 and Factur-X files become the same contract lines (invoice_contract), checked alike
and grouped into invoices; complete invoices are COPYed into a staging table and merged with
set-based SQL (invoice_merge), rejections go to raw.rejections, all in one transaction: a crash
leaves the day loaded or untouched. A file that cannot be read at all is rejected whole and the
other files still load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import psycopg
from sqlalchemy.engine import Engine

from backoffice.config import get_settings
from backoffice.db.engine import get_engine
from backoffice.ingest import invoice_merge, ledger
from backoffice.ingest.files import LandingFile, landing_file
from backoffice.ingest.invoice_contract import COLUMNS, SourceLine, assemble
from backoffice.ingest.invoice_csv import parse_invoice_csv
from backoffice.ingest.invoice_facturx import parse_facturx
from backoffice.ingest.invoice_ubl import parse_ubl
from backoffice.ingest.invoice_xml import SupplierDirectory, Unparseable
from backoffice.ingest.result import IngestResult

SOURCE = "supplier_invoices"
XML_PARSERS: dict[str, Callable[[bytes, SupplierDirectory], list[SourceLine]]] = {
    ".xml": parse_ubl,
    ".pdf": parse_facturx,
}
SUFFIXES = (".csv", *XML_PARSERS)


def day_folder(landing_dir: Path, day: date) -> Path:
    return landing_dir / SOURCE / day.isoformat()


def load_supplier_invoices_day(
    day: date, landing_dir: Path | None = None, engine: Engine | None = None
) -> IngestResult:
    """Load the day's invoice files into raw.supplier_invoice_lines and app.supplier_invoice(s/_lines).

    Suppliers must be loaded first: sellers and supplier codes are resolved through app.suppliers.
    """
    started = time.perf_counter()
    landing_dir = (landing_dir or get_settings().landing_dir).resolve()
    paths = sorted(p for p in day_folder(landing_dir, day).glob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    engine = engine or get_engine()
    with engine.begin() as conn:
        pg: psycopg.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        with pg.cursor() as cur:
            cur.execute("SET LOCAL TimeZone = 'UTC'")
            ledger.lock_source(cur, SOURCE)
            files = [(path, path.read_bytes()) for path in paths]
            landing = [landing_file(path, landing_dir, data) for path, data in files]
            done = ledger.already_loaded(cur, SOURCE, landing)
            todo = [(f, data) for f, (_, data) in zip(landing, files, strict=True) if f.name not in done]
            cur.execute("SELECT supplier_code, name, vat_number FROM app.suppliers")
            suppliers = SupplierDirectory.of(cur.fetchall())
            cur.execute(invoice_merge.CREATE_STAGE)
            rejected = _stage(cur, todo, suppliers)
            for statement in invoice_merge.MERGE:
                cur.execute(statement)
            cur.execute(invoice_merge.COUNTS_PER_FILE)
            counts = {file: (loaded, conflicts, unchanged) for file, loaded, conflicts, unchanged in cur.fetchall()}
            cur.execute(invoice_merge.INSERT_REJECTIONS, {"source": SOURCE})
            per_file = []
            for f, _ in todo:
                loaded, conflicts, _ = counts.get(f.name, (0, 0, 0))
                per_file.append((f, loaded, conflicts + rejected.get(f.name, 0)))
            ledger.record_files(cur, SOURCE, day, per_file)
    return IngestResult(
        source=SOURCE,
        files=len(landing),
        files_skipped=len(done),
        rows_loaded=sum(c[0] for c in counts.values()),
        rows_unchanged=sum(c[2] for c in counts.values()) + sum(done.values()),
        rows_rejected=sum(rejected.values()) + sum(c[1] for c in counts.values()),
        bytes=sum(f.size for f in landing),
        duration_s=round(time.perf_counter() - started, 3),
    )


def _stage(cur: psycopg.Cursor, files: list[tuple[LandingFile, bytes]], suppliers: SupplierDirectory) -> dict[str, int]:
    """COPY the complete invoices into stage_invoice_line and the rest into stage_rejection.

    Returns the number of lines (or whole files) rejected per file.
    """
    rejections: list[ledger.Rejection] = []
    with cur.copy(f"COPY stage_invoice_line ({', '.join(COLUMNS)}, invoice_sha256, file, line) FROM STDIN") as copy:
        for f, data in files:
            lines, unreadable = read_lines(f, data, suppliers)
            invoices, breaches = assemble(f.name, lines, suppliers.codes)
            rejections += unreadable + breaches
            for invoice in invoices:
                for record in invoice.lines:
                    copy.write_row((*record.row(), invoice.sha256, record.file, record.line))
    ledger.copy_rejections(cur, rejections)
    per_file: dict[str, int] = {}
    for name, *_ in rejections:
        per_file[name] = per_file.get(name, 0) + 1
    return per_file


def read_lines(
    f: LandingFile, data: bytes, suppliers: SupplierDirectory
) -> tuple[list[SourceLine], list[ledger.Rejection]]:
    """The file's invoice lines in contract form, whatever its format, or why it cannot be read."""
    parser = XML_PARSERS.get(f.path.suffix.lower())
    if parser is None:
        return parse_invoice_csv(f)
    try:
        return parser(data, suppliers), []
    except Unparseable as exc:
        return [], [(f.name, None, exc.record_key, exc.reason)]
