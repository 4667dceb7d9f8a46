"""A day's journal lines read once with `COPY (SELECT ...) TO STDOUT` into an Arrow/polars frame, and
the FEC, CSV and Parquet built from that frame by columns.

The row-by-row writers (`fec.lines`, `companions.write_csv`, `companions.write_parquet`) stay the
reference: the functions here write the same bytes (tests/integration/test_export_frame.py compares
the SHA-256 of both on awkward data), but no journal line ever becomes a Python object. What is
exact is computed by PostgreSQL in the COPY itself: the FEC's amounts (`abs(debit)::text` with a
comma), dates as YYYYMMDD (`to_char`, in the session's time zone, as psycopg's datetimes show them),
the CSV's UTC timestamp as `datetime.isoformat` writes it, the Parquet's timestamp as epoch
microseconds. Text that the FEC must clean (`fec.text`) is cleaned by the same Python function, once
per distinct value, and mapped back onto the column.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from backoffice.export import companions, fec

# What the COPY selects from the ordered lines (alias `l`): the companions' columns as the CSV and
# Parquet want them, the entry key, and the FEC's exact fields.
SELECT = """
    l.journal_code, l.entry_number, l.fiscal_year,
    l.entry_date::text AS entry_date, l.account, l.aux_account, l.account_label, l.piece_ref,
    l.piece_date::text AS piece_date, l.label, l.debit, l.credit, l.currency_amount, l.currency,
    (extract(epoch FROM l.validated_at) * 1000000)::bigint AS validated_us,
    to_char(l.validated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN mod(extract(microseconds FROM l.validated_at)::bigint, 1000000) = 0 THEN ''
                ELSE to_char(l.validated_at AT TIME ZONE 'UTC', '.US') END
        || '+00:00' AS validated_iso,
    l.source_type, l.source_id, l.dossier_number,
    to_char(l.entry_date, 'YYYYMMDD') AS fec_entry_date,
    to_char(l.piece_date, 'YYYYMMDD') AS fec_piece_date,
    to_char(l.validated_at, 'YYYYMMDD') AS fec_valid_date,
    replace(abs(round(coalesce(l.debit, 0), 2))::text, '.', ',') AS fec_debit,
    replace(abs(round(coalesce(l.credit, 0), 2))::text, '.', ',') AS fec_credit,
    replace(abs(round(coalesce(l.currency_amount, 0), 2))::text, '.', ',') AS fec_currency_amount
"""
_TYPES = {
    "journal_code": pa.string(),
    "entry_number": pa.int32(),
    "fiscal_year": pa.int32(),
    "entry_date": pa.date32(),
    "account": pa.string(),
    "aux_account": pa.string(),
    "account_label": pa.string(),
    "piece_ref": pa.string(),
    "piece_date": pa.date32(),
    "label": pa.string(),
    "debit": companions.MONEY,
    "credit": companions.MONEY,
    "currency_amount": companions.MONEY,
    "currency": pa.string(),
    "validated_us": pa.int64(),
    "validated_iso": pa.string(),
    "source_type": pa.string(),
    "source_id": pa.string(),
    "dossier_number": pa.string(),
    "fec_entry_date": pa.string(),
    "fec_piece_date": pa.string(),
    "fec_valid_date": pa.string(),
    "fec_debit": pa.string(),
    "fec_credit": pa.string(),
    "fec_currency_amount": pa.string(),
}
NAMES = tuple(_TYPES)


def read(conn: Any, query: str, params: Mapping[str, Any]) -> pa.Table:
    """The lines of `query` (psycopg placeholders, selecting `SELECT` from alias `l`, ordered) as one
    Arrow table, through one `COPY ... TO STDOUT` on the SQLAlchemy connection `conn` (its own
    transaction). NULL stays null; an empty string stays empty (a quoted "" in the CSV)."""
    raw = conn.connection.driver_connection
    buffer = io.BytesIO()
    with raw.cursor() as cursor, cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)", params) as copy:
        for block in copy:
            buffer.write(block)
    if buffer.tell() == 0:
        return pa.table({name: pa.array([], type=kind) for name, kind in _TYPES.items()})
    return _parsed(buffer.getbuffer())


def _parsed(data: Any) -> pa.Table:
    """COPY's CSV output (bytes) as one Arrow table of `_TYPES`."""
    table = pacsv.read_csv(
        pa.BufferReader(data),
        read_options=pacsv.ReadOptions(column_names=list(NAMES), block_size=1 << 24),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=_TYPES, strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )
    return table.combine_chunks()


# ---------------------------------------------------------------- totals and keys
def totals(table: pa.Table) -> dict[str, dict[str, Any]]:
    """Per journal: entries, lines, debit and credit (decimal strings), as the manifest records them."""
    frame = pl.from_arrow(table.select(["journal_code", "fiscal_year", "entry_number", "debit", "credit"]))
    assert isinstance(frame, pl.DataFrame)
    cents = frame.group_by("journal_code").agg(
        lines=pl.len(),
        entries=pl.struct("fiscal_year", "entry_number").n_unique(),
        debit=(pl.col("debit").cast(pl.Decimal(38, 2)) * 100).cast(pl.Int64).sum(),
        credit=(pl.col("credit").cast(pl.Decimal(38, 2)) * 100).cast(pl.Int64).sum(),
    )
    return {
        row["journal_code"]: {
            "entries": row["entries"],
            "lines": row["lines"],
            "debit": str(Decimal(row["debit"]).scaleb(-2)),
            "credit": str(Decimal(row["credit"]).scaleb(-2)),
        }
        for row in cents.sort("journal_code").iter_rows(named=True)
    }


def keys(table: pa.Table) -> tuple[list[str], list[int], list[int]]:
    """The distinct entries (journal, fiscal year, number), sorted, as three lists."""
    frame = pl.from_arrow(table.select(["journal_code", "fiscal_year", "entry_number"]))
    assert isinstance(frame, pl.DataFrame)
    frame = frame.unique().sort("journal_code", "fiscal_year", "entry_number")
    return (
        frame.get_column("journal_code").to_list(),
        frame.get_column("fiscal_year").to_list(),
        frame.get_column("entry_number").to_list(),
    )


# ---------------------------------------------------------------- the FEC
def _cleaned(column: pl.Expr, frame: pl.DataFrame, name: str, fmt: fec.FecFormat) -> pl.Expr:
    """`fec.text` of every value of `frame[name]`: computed once per distinct value, mapped back."""
    distinct = [value for value in frame.get_column(name).unique().to_list() if value is not None]
    done = [fec.text(value, fmt) for value in distinct]
    if distinct == done:
        return column.fill_null("")
    return column.replace_strict(distinct, done, default="", return_dtype=pl.String).fill_null("")


def fec_bytes(table: pa.Table, fmt: fec.FecFormat, with_header: bool = True) -> bytes:
    """The whole FEC file, the same bytes as `b"".join(fec.lines(rows, fmt))` for the same lines
    (`with_header=False`: the lines alone, for a file written batch by batch)."""
    frame = pl.from_arrow(
        table.select(
            [
                "journal_code",
                "entry_number",
                "account",
                "aux_account",
                "account_label",
                "piece_ref",
                "label",
                "currency",
                "fec_entry_date",
                "fec_piece_date",
                "fec_valid_date",
                "fec_debit",
                "fec_credit",
                "fec_currency_amount",
            ]
        )
    )
    assert isinstance(frame, pl.DataFrame)
    header = (fmt.char.join(fec.COLUMNS) + "\r\n").encode(fmt.encoding)
    if frame.height == 0:
        return header if with_header else b""
    journals = frame.get_column("journal_code").unique().to_list()
    journal_label = pl.col("journal_code").replace_strict(
        journals, [fec.text(fec.JOURNALS.get(j, j), fmt) for j in journals], return_dtype=pl.String
    )
    foreign = pl.col("currency").is_not_null() & (pl.col("currency") != fec.BOOK_CURRENCY)
    has_aux = pl.col("aux_account").is_not_null() & (pl.col("aux_account") != "")
    label_of_account = _cleaned(pl.col("account_label"), frame, "account_label", fmt)
    line = pl.concat_str(
        [
            _cleaned(pl.col("journal_code"), frame, "journal_code", fmt),
            journal_label,
            pl.col("entry_number").cast(pl.String),
            pl.col("fec_entry_date").fill_null(""),
            _cleaned(pl.col("account"), frame, "account", fmt),
            label_of_account,
            _cleaned(pl.col("aux_account"), frame, "aux_account", fmt),
            pl.when(has_aux).then(label_of_account).otherwise(pl.lit("")),
            _cleaned(pl.col("piece_ref"), frame, "piece_ref", fmt),
            pl.col("fec_piece_date").fill_null(""),
            _cleaned(pl.col("label"), frame, "label", fmt),
            pl.col("fec_debit"),
            pl.col("fec_credit"),
            pl.lit(""),  # EcritureLet: the journal has no lettering yet
            pl.lit(""),  # DateLet
            pl.col("fec_valid_date").fill_null(""),
            pl.when(foreign).then(pl.col("fec_currency_amount")).otherwise(pl.lit("")),
            pl.when(foreign).then(_cleaned(pl.col("currency"), frame, "currency", fmt)).otherwise(pl.lit("")),
        ],
        separator=fmt.char,
    )
    built = frame.select(line.alias("line")).get_column("line")
    if built.null_count():  # concat_str gives null for a null part: a line would silently go missing
        raise ValueError("a journal line lacks its journal code or entry number")
    body = (built.str.join("\r\n").item() + "\r\n").encode(fmt.encoding)
    return header + body if with_header else body


# ---------------------------------------------------------------- the companions
_CSV_SPECIAL = r'[,"\r\n]'


def _csv_field(column: pl.Expr) -> pl.Expr:
    """A value as Python's csv module (QUOTE_MINIMAL, ',' and '"') writes it; null as empty."""
    text = column.fill_null("")
    quoted = pl.lit('"') + text.str.replace_all('"', '""', literal=True) + pl.lit('"')
    return pl.when(text.str.contains(_CSV_SPECIAL)).then(quoted).otherwise(text)


def csv_bytes(table: pa.Table) -> bytes:
    """The CSV companion, the same bytes as `companions.write_csv` writes for the same lines."""
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    header = (",".join(companions.COLUMNS) + "\r\n").encode("utf-8")
    if frame.height == 0:
        return header
    money = ("debit", "credit", "currency_amount")
    values = []
    for name in companions.COLUMNS:
        if name == "validated_at":
            values.append(pl.col("validated_iso"))
        elif name in money or name == "entry_number":
            values.append(pl.col(name).cast(pl.String))
        elif name in ("entry_date", "piece_date"):
            values.append(pl.col(name).dt.strftime("%Y-%m-%d"))
        else:
            values.append(_csv_field(pl.col(name)))
    body = frame.select(pl.concat_str([v.fill_null("") for v in values], separator=",").str.join("\r\n")).item()
    return header + (body + "\r\n").encode("utf-8")


def parquet_table(table: pa.Table) -> pa.Table:
    """The Parquet companion's table (`companions.SCHEMA`), as `companions.write_parquet` builds it."""
    columns = []
    for field in companions.SCHEMA:
        if field.name == "validated_at":
            columns.append(table.column("validated_us").cast(pa.timestamp("us", tz="UTC")))
        else:
            columns.append(table.column(field.name).cast(field.type))
    return pa.Table.from_arrays(columns, schema=companions.SCHEMA).combine_chunks()


def write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(parquet_table(table), path, compression="zstd")


# ---------------------------------------------------------------- a fiscal year, streamed
BATCH_BYTES = 4 << 20  # of COPY output per batch: a year's memory stays a few batches wide


def batches(conn: Any, query: str, params: Mapping[str, Any]) -> Iterator[pa.Table]:
    """The lines of `query` (as for `read`) as a stream of tables of about BATCH_BYTES of COPY output
    each (some tens of thousands of lines): the output is parsed as it arrives, never held whole.
    COPY sends one message per line (even with a line break inside a value), so a batch is whole lines."""
    raw = conn.connection.driver_connection
    buffer = bytearray()
    with raw.cursor() as cursor, cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)", params) as copy:
        for line in copy:
            buffer += line
            if len(buffer) >= BATCH_BYTES:
                yield _parsed(bytes(buffer))
                buffer.clear()
    if buffer:
        yield _parsed(bytes(buffer))


def cents(table: pa.Table, name: str) -> int:
    """The sum of a money column in cents (exact)."""
    frame = pl.from_arrow(table.select([name]))
    assert isinstance(frame, pl.DataFrame)
    total = frame.select((pl.col(name).cast(pl.Decimal(38, 2)) * 100).cast(pl.Int64).sum()).item()
    return int(total or 0)
