"""CSV landing files (payments, supplier invoices) read record by record, with line numbers.

The csv module rather than polars: each record must be refused alone with the line it starts
on, and polars cannot tell that line once a quoted field spans lines, turns a blank line into a
row of nulls, reads a short row as nulls, and fails the whole file on one row with a field too many.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from backoffice.ingest.files import LandingFile
from backoffice.ingest.ledger import Rejection


@dataclass(frozen=True)
class CsvRecord:
    line: int  # where the record starts (the header is line 1)
    fields: dict[str, str]


@dataclass(frozen=True)
class CsvFile:
    records: list[CsvRecord]
    rejections: list[Rejection]


def read_csv(f: LandingFile, required: tuple[str, ...]) -> CsvFile:
    """Every record of the file, or the whole file refused when its text or header is unusable.

    A record with the wrong number of fields is refused alone; the others are returned.
    """
    if f.unreadable is not None:
        return CsvFile([], [(f.name, None, None, f.unreadable)])
    assert f.text is not None
    rows = _rows(f.text)
    try:
        header_line, header = next(rows, (1, []))
        names = [name.strip() for name in header]
        missing = [column for column in required if column not in names]
        if missing:
            return CsvFile([], [(f.name, header_line, None, f"header: missing column(s) {', '.join(missing)}")])
        records, rejections = [], []
        for line, row in rows:
            if len(row) != len(names):
                reason = f"row: {len(row)} fields where the header has {len(names)}"
                rejections.append((f.name, line, row[0].strip() if row else None, reason))
                continue
            records.append(CsvRecord(line, dict(zip(names, row, strict=True))))
    except _Broken as broken:
        # A broken quote leaves every later record in doubt: the file is refused whole.
        return CsvFile([], [(f.name, broken.line, None, f"not valid CSV: {broken.problem}; the file is refused whole")])
    return CsvFile(records, rejections)


class _Broken(Exception):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line of the record, fields) for each non-blank record."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        for row in reader:
            if row and any(field.strip() for field in row):
                yield start, row
            start = reader.line_num + 1
    except csv.Error as exc:
        raise _Broken(start, str(exc)) from None
