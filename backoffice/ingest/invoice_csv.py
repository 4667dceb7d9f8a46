"""Supplier invoices as CSV: one record per invoice line, columns named as in the contract."""

from __future__ import annotations

from backoffice.ingest.csv_records import read_csv
from backoffice.ingest.files import LandingFile
from backoffice.ingest.invoice_contract import COLUMNS, SourceLine
from backoffice.ingest.ledger import Rejection


def parse_invoice_csv(f: LandingFile) -> tuple[list[SourceLine], list[Rejection]]:
    """The file's invoice lines, and the records (or the whole file) that cannot be read."""
    csv_file = read_csv(f, COLUMNS)
    lines = [SourceLine(r.line, {column: r.fields[column] for column in COLUMNS}) for r in csv_file.records]
    return lines, csv_file.rejections
