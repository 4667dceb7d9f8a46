"""A CSV laid out for a given accounting tool, delivered beside the standard files.

A small TOML or JSON file (BACKOFFICE_EXPORT_CSV_LAYOUT) says which columns the tool wants, under
which headers and in which order, the field separator, the decimal mark, the date format and the
character set. `MappedCsv` wraps any delivery (folder, SFTP, S3): it writes
`<SIREN>FEC<YYYYMMDD>.<name>.csv` from the day's Parquet file (exact decimals) and hands it to the
wrapped delivery with the other files, the manifest still last. The mapped file is derived from
the checked files, so a re-run gives the same bytes. Example:

    name = "tool"
    separator = ";"
    decimal = ","
    date_format = "%d/%m/%Y"
    columns = [
      { header = "Journal", source = "journal_code" },
      { header = "Date", source = "entry_date" },
      { header = "Compte", source = "account" },
      { header = "Montant", source = "amount" },
    ]

A source is a column of the CSV/Parquet companions (backoffice.export.companions.COLUMNS), or
`amount` (debit minus credit, signed) or `journal_label`.
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from backoffice.domain.errors import InvalidInput
from backoffice.export import companions, fec
from backoffice.export.delivery import MANIFEST, Delivery

SOURCES = (*companions.COLUMNS, "amount", "journal_label")
ENCODINGS = ("utf-8", "iso-8859-15", "cp1252")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_BATCH = 50_000


@dataclass(frozen=True)
class Column:
    header: str
    source: str


@dataclass(frozen=True)
class CsvLayout:
    name: str
    columns: tuple[Column, ...]
    separator: str = ";"
    decimal: str = ","
    date_format: str = "%d/%m/%Y"
    encoding: str = "utf-8"
    header: bool = True

    def file_name(self, parquet_name: str) -> str:
        return f"{Path(parquet_name).stem}.{self.name}.csv"

    def value(self, row: Mapping[str, Any], source: str) -> str:
        if source == "amount":
            value: Any = (row["debit"] or Decimal(0)) - (row["credit"] or Decimal(0))
        elif source == "journal_label":
            value = fec.JOURNALS.get(row["journal_code"], row["journal_code"])
        else:
            value = row[source]
        if value is None:
            return ""
        if isinstance(value, Decimal):
            return f"{value:.2f}".replace(".", self.decimal)
        if isinstance(value, date | datetime):
            return value.strftime(self.date_format)
        return str(value)


def parse_layout(data: Mapping[str, Any]) -> CsvLayout:
    """The layout a file describes, or InvalidInput naming the first bad field."""
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput("name", "must be 1 to 40 lower-case letters, digits, '-' or '_' (it names the file)")
    separator = data.get("separator", ";")
    if not isinstance(separator, str) or len(separator) != 1 or separator in '\r\n"':
        raise InvalidInput("separator", f"{separator!r} must be one character other than a quote or line break")
    decimal = data.get("decimal", ",")
    if decimal not in (".", ","):
        raise InvalidInput("decimal", f"{decimal!r} must be '.' or ','")
    if decimal == separator:
        raise InvalidInput("decimal", "must differ from the separator")
    date_format = data.get("date_format", "%d/%m/%Y")
    if not isinstance(date_format, str) or "%" not in date_format:
        raise InvalidInput("date_format", f"{date_format!r} is not a strftime format such as '%d/%m/%Y'")
    encoding = data.get("encoding", "utf-8")
    if encoding not in ENCODINGS:
        raise InvalidInput("encoding", f"{encoding!r} is not one of {', '.join(ENCODINGS)}")
    header = data.get("header", True)
    if not isinstance(header, bool):
        raise InvalidInput("header", "must be true or false")
    raw = data.get("columns")
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("columns", "must list at least one column")
    columns = []
    for i, column in enumerate(raw):
        if not isinstance(column, Mapping):
            raise InvalidInput(f"columns[{i}]", "must be a table with a header and a source")
        source = column.get("source")
        if source not in SOURCES:
            raise InvalidInput(f"columns[{i}].source", f"{source!r} is not one of {', '.join(SOURCES)}")
        title = column.get("header", source)
        if not isinstance(title, str) or not title.strip():
            raise InvalidInput(f"columns[{i}].header", "must be a non-empty text")
        columns.append(Column(title, source))
    return CsvLayout(name, tuple(columns), separator, decimal, date_format, encoding, header)


def load_layout(path: Path) -> CsvLayout:
    """Read a layout from a .toml or .json file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text) if Path(path).suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as error:
        raise InvalidInput("export_csv_layout", f"{path}: {error}") from None
    if not isinstance(data, dict):
        raise InvalidInput("export_csv_layout", f"{path}: must hold a table of settings")
    return parse_layout(data)


def write_mapped(layout: CsvLayout, parquet: Path, out: Path) -> None:
    """The mapped CSV of a day's Parquet file, read in batches (bounded memory)."""
    with out.open("w", encoding=layout.encoding, errors="replace", newline="") as handle:
        writer = csv.writer(handle, delimiter=layout.separator, lineterminator="\r\n")
        if layout.header:
            writer.writerow([c.header for c in layout.columns])
        for batch in pq.ParquetFile(parquet).iter_batches(batch_size=_BATCH):
            for row in batch.to_pylist():
                writer.writerow([layout.value(row, c.source) for c in layout.columns])


class MappedCsv:
    """Adds the layout's CSV to what `inner` delivers."""

    def __init__(self, inner: Delivery, layout: CsvLayout) -> None:
        self.inner = inner
        self.layout = layout

    def deliver(self, folder: str, files: Mapping[str, Path]) -> str:
        parquet = next(name for name in files if name.endswith(".parquet"))
        with tempfile.TemporaryDirectory(prefix="backoffice-layout-") as tmp:
            mapped = Path(tmp) / self.layout.file_name(parquet)
            write_mapped(self.layout, files[parquet], mapped)
            data = {name: path for name, path in files.items() if name != MANIFEST}
            data[mapped.name] = mapped
            if MANIFEST in files:
                data[MANIFEST] = files[MANIFEST]
            return self.inner.deliver(folder, data)
