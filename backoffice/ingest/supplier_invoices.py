"""Load one day of supplier invoices: `<landing>/supplier_invoices/<YYYY-MM-DD>/*.csv|*.xml|*.pdf`.

CSV, UBL 2.1 and Factur-X files become the same contract lines (invoice_contract), checked alike
and grouped into invoices; complete invoices are COPYed into a staging table and merged with
set-based SQL (invoice_merge), rejections go to raw.rejections, all in one transaction: a crash
leaves the day loaded or untouched. A file that cannot be read at all is rejected whole and the
other files still load.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import psycopg
from sqlalchemy.engine import Engine

from backoffice.config import get_settings
from backoffice.db.engine import get_engine
from backoffice.ingest import invoice_merge, ledger
from backoffice.ingest.day_load import load_day
from backoffice.ingest.files import LandingFile, read_landing_file
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
    landing_dir = (landing_dir or get_settings().landing_dir).resolve()
    paths = sorted(p for p in day_folder(landing_dir, day).glob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    return load_day(
        SOURCE,
        day,
        lambda: [read_landing_file(path, landing_dir, keep_bytes=True) for path in paths],
        _stage,
        invoice_merge,
        engine or get_engine(),
    )


def _stage(cur: psycopg.Cursor, files: list[LandingFile]) -> dict[str, int]:
    """COPY the complete invoices into stage_invoice_line and the rest into stage_rejection.

    Returns the number of lines (or whole files) rejected per file.
    """
    cur.execute("SELECT supplier_code, name, vat_number FROM app.suppliers")
    suppliers = SupplierDirectory.of(cur.fetchall())
    rejections: list[ledger.Rejection] = []
    with cur.copy(f"COPY stage_invoice_line ({', '.join(COLUMNS)}, invoice_sha256, file, line) FROM STDIN") as copy:
        for f in files:
            assert f.data is not None  # read with keep_bytes
            lines, unreadable = read_lines(f, f.data, suppliers)
            invoices, breaches = assemble(f.name, lines, suppliers.codes)
            rejections += unreadable + breaches
            for invoice in invoices:
                for record in invoice.lines:
                    copy.write_row((*record.row(), invoice.sha256, record.file, record.line))
    return ledger.copy_rejections(cur, rejections)


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
