"""The Parquet archive: each day's snapshot of the marts accountants analyse, for DuckDB.

Layout: `<root>/<table>/date=YYYY-MM-DD/part.parquet` (hive partitions). A day's files are read
from PostgreSQL in one repeatable-read transaction (the tables agree with each other), streamed
through a server-side cursor in batches of `BATCH_ROWS` (memory is bounded by a batch, not by the
table), written to a hidden temporary file beside the target and renamed over it, so a reader
sees the old file or the new one, never half of one. Rows are ordered on a full key and the
Parquet writer adds no timestamp: the same database state gives byte-identical files.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from backoffice.domain.clock import ACCOUNTING_TIMEZONE_NAME as TIMEZONE

BATCH_ROWS = 50_000

MONEY = pa.decimal128(14, 2)
TEXT = pa.string()
DAY = pa.date32()
MOMENT = pa.timestamp("us", tz="UTC")
COUNT = pa.int32()

_DOSSIER = [("brand", TEXT), ("destination", TEXT), ("destination_country", TEXT), ("departure_date", DAY)]
_ENTRY = [
    ("journal_code", TEXT),
    ("entry_number", COUNT),
    ("entry_date", DAY),
    ("account", TEXT),
    ("aux_account", TEXT),
    ("account_label", TEXT),
    ("piece_ref", TEXT),
    ("piece_date", DAY),
    ("label", TEXT),
    ("debit", MONEY),
    ("credit", MONEY),
    ("currency_amount", MONEY),
    ("currency", TEXT),
    ("validated_at", MOMENT),
    ("source_type", TEXT),
    ("source_id", TEXT),
    ("dossier_number", TEXT),
    ("exported_in", TEXT),
]
_ENTRY_COLUMNS = ", ".join(f"e.{name}" for name, _ in _ENTRY)
# Journal lines have no line number: every column takes part in the order, so it is total.
_ENTRY_ORDER = "e.journal_code, e.entry_number, e.debit DESC, e.credit DESC, e.account, e.aux_account, e.label"
_ENTRY_ORDER += ", e.source_type, e.source_id, e.dossier_number, e.currency_amount, e.piece_ref"


@dataclass(frozen=True)
class Table:
    """One archived table: its columns (name, Arrow type) and the query that reads a day's rows."""

    name: str
    columns: tuple[tuple[str, pa.DataType], ...]
    sql: str

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(name, kind) for name, kind in self.columns])


TABLES: tuple[Table, ...] = (
    Table(
        "dossier_billing_status",
        (
            ("dossier_number", TEXT),
            ("supplier_status", TEXT),
            ("supplier_count", COUNT),
            ("currency", TEXT),
            ("sale_total", MONEY),
            ("purchase_total", MONEY),
            ("margin", MONEY),
            ("client_invoiced_amount", MONEY),
            ("client_paid_amount", MONEY),
            ("client_balance_due", MONEY),
            ("next_payment_due_date", DAY),
            ("next_payment_amount", MONEY),
            *_DOSSIER,
        ),
        """SELECT b.dossier_number, b.supplier_status, b.supplier_count, b.currency, b.sale_total,
                  b.purchase_total, b.margin, b.client_invoiced_amount, b.client_paid_amount,
                  b.client_balance_due, b.next_payment_due_date, b.next_payment_amount,
                  d.brand, d.destination, d.destination_country, d.departure_date
           FROM marts.dossier_billing_status b JOIN app.dossiers d USING (dossier_number)
           ORDER BY b.dossier_number""",
    ),
    Table(
        "supplier_billing_status",
        (
            ("dossier_number", TEXT),
            ("supplier_code", TEXT),
            ("currency", TEXT),
            ("expected_amount", MONEY),
            ("invoiced_amount", MONEY),
            ("difference", MONEY),
            ("tolerance", MONEY),
            ("status", TEXT),
            ("last_invoice_date", DAY),
            ("converted_from_currency", TEXT),
            ("exchange_rate", pa.decimal128(18, 8)),
            ("matched_lines", COUNT),
            ("brand", TEXT),
        ),
        """SELECT s.dossier_number, s.supplier_code, s.currency, s.expected_amount, s.invoiced_amount,
                  s.difference, s.tolerance, s.status, s.last_invoice_date, s.converted_from_currency,
                  s.exchange_rate, s.matched_lines, d.brand
           FROM marts.supplier_billing_status s LEFT JOIN app.dossiers d USING (dossier_number)
           ORDER BY s.dossier_number, s.supplier_code, s.currency""",
    ),
    Table(
        "supplier_invoice_line_matches",
        (
            ("supplier_code", TEXT),
            ("invoice_number", TEXT),
            ("line_number", COUNT),
            ("kind", TEXT),
            ("amount_incl_tax", MONEY),
            ("currency", TEXT),
            ("dossier_number", TEXT),
            ("match_method", TEXT),
            ("confidence", pa.decimal128(5, 4)),
            ("state", TEXT),
            ("invoice_date", DAY),
            ("due_date", DAY),
        ),
        """SELECT m.supplier_code, m.invoice_number, m.line_number, m.kind, m.amount_incl_tax, m.currency,
                  m.dossier_number, m.match_method, m.confidence, m.state, i.invoice_date, i.due_date
           FROM marts.supplier_invoice_line_matches m
           JOIN app.supplier_invoices i USING (supplier_code, invoice_number)
           ORDER BY m.supplier_code, m.invoice_number, m.line_number, m.dossier_number NULLS FIRST,
                    m.state, m.match_method, m.amount_incl_tax""",
    ),
    Table(
        "accounting_entries",
        tuple(_ENTRY),
        # The journal grows by the day: the lines validated on the day, so the partitions together
        # hold each line once.
        f"""SELECT {_ENTRY_COLUMNS} FROM marts.accounting_entries e
            WHERE e.validated_at >= (CAST(:day AS date)::timestamp AT TIME ZONE '{TIMEZONE}')
              AND e.validated_at < ((CAST(:day AS date) + 1)::timestamp AT TIME ZONE '{TIMEZONE}')
            ORDER BY {_ENTRY_ORDER}""",
    ),
    Table(
        "dossier_margin",
        (
            ("dossier_number", TEXT),
            ("currency", TEXT),
            ("sale_total", MONEY),
            ("purchase_total_estimated", MONEY),
            ("margin_estimated", MONEY),
            ("margin_vat_estimated", MONEY),
            ("purchase_total_actual", MONEY),
            ("margin_actual", MONEY),
            ("margin_vat_actual", MONEY),
            ("eu_share", pa.decimal128(9, 6)),
            ("computed_from", TEXT),
            *_DOSSIER,
        ),
        """SELECT m.dossier_number, m.currency, m.sale_total, m.purchase_total_estimated, m.margin_estimated,
                  m.margin_vat_estimated, m.purchase_total_actual, m.margin_actual, m.margin_vat_actual,
                  m.eu_share, m.computed_from, d.brand, d.destination, d.destination_country, d.departure_date
           FROM marts.dossier_margin m JOIN app.dossiers d USING (dossier_number)
           ORDER BY m.dossier_number""",
    ),
    Table(
        "client_balances",
        (
            ("dossier_number", TEXT),
            ("currency", TEXT),
            ("sale_total", MONEY),
            ("client_invoiced_amount", MONEY),
            ("client_paid_amount", MONEY),
            ("client_refunded_amount", MONEY),
            ("client_balance_due", MONEY),
            ("next_payment_due_date", DAY),
            ("next_payment_amount", MONEY),
        ),
        """SELECT dossier_number, currency, sale_total, client_invoiced_amount, client_paid_amount,
                  client_refunded_amount, client_balance_due, next_payment_due_date, next_payment_amount
           FROM intermediate.int_client__balances ORDER BY dossier_number""",
    ),
    Table(
        "export_entries",
        tuple(_ENTRY),
        f"""SELECT {_ENTRY_COLUMNS} FROM marts.accounting_entries e
            JOIN app.accounting_exports x ON x.id = e.exported_in
            WHERE x.export_date = CAST(:day AS date)
            ORDER BY {_ENTRY_ORDER}""",
    ),
)
TABLE_NAMES = tuple(t.name for t in TABLES)

# The billing status mix over time reads every day of its range: one file a month of counts per
# day, status, brand and supplier (derived from the daily files) keeps it to a few dozen files
# over years instead of one per day.
STATUS_COUNTS = "billing_status_counts"
STATUS_COUNTS_SCHEMA = pa.schema(
    [
        pa.field("date", DAY),
        pa.field("status", TEXT),
        pa.field("brand", TEXT),
        pa.field("supplier_code", TEXT),
        pa.field("rows", pa.int64()),
    ]
)


@dataclass(frozen=True)
class WrittenFile:
    table: str
    path: Path
    rows: int
    bytes: int


@dataclass(frozen=True)
class ArchiveResult:
    day: date
    root: Path
    files: tuple[WrittenFile, ...]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def summary_lines(self) -> list[str]:
        return [f"archive {self.day}: {f.table} {f.rows} rows, {f.bytes} bytes" for f in self.files]


def partition_path(root: Path, table: str, day: date) -> Path:
    return root / table / f"date={day.isoformat()}" / "part.parquet"


def status_counts_path(root: Path, day: date) -> Path:
    return root / STATUS_COUNTS / f"month={day:%Y-%m}" / "part.parquet"


def archive_day(engine: Engine, day: date, root: Path, batch_rows: int = BATCH_ROWS) -> ArchiveResult:
    """Write (or rewrite) the day's partition of every table of TABLES under `root`."""
    written = []
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            for table in TABLES:
                batches = _batches(conn, table, day, batch_rows)
                written.append(write_partition(root, table, day, batches))
    written.append(write_status_counts(root, day))
    return ArchiveResult(day, root, tuple(written))


def _batches(conn: Connection, table: Table, day: date, batch_rows: int) -> Iterator[pa.RecordBatch]:
    params = {"day": day} if ":day" in table.sql else {}
    result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(sa.text(table.sql), params)
    schema = table.schema
    for rows in result.partitions(batch_rows):
        columns = list(zip(*rows, strict=True))
        yield pa.RecordBatch.from_arrays(
            [pa.array(values, type=field.type) for values, field in zip(columns, schema, strict=True)], schema=schema
        )


def write_partition(root: Path, table: Table, day: date, batches: Iterator[pa.RecordBatch]) -> WrittenFile:
    """Stream `batches` into the day's file of `table`."""
    target = partition_path(root, table.name, day)
    return WrittenFile(table.name, target, *_write_file(target, table.schema, batches))


def write_status_counts(root: Path, day: date) -> WrittenFile:
    """Rewrite the counts file of `day`'s month from the month's daily supplier_billing_status files."""
    folder = root / "supplier_billing_status"
    prefix = f"date={day:%Y-%m}-"
    days = sorted(p / "part.parquet" for p in folder.iterdir() if p.name.startswith(prefix)) if folder.is_dir() else []
    paths = [str(p) for p in days if p.is_file()]
    target = status_counts_path(root, day)
    if not paths:
        return WrittenFile(STATUS_COUNTS, target, *_write_file(target, STATUS_COUNTS_SCHEMA, iter([])))
    with duckdb.connect(config={"threads": 2}) as con:
        counts = con.sql(
            """SELECT date, status, brand, supplier_code, count(*) AS rows
               FROM read_parquet($paths, hive_partitioning = true, hive_types = {'date': DATE})
               GROUP BY ALL ORDER BY ALL""",
            params={"paths": paths},
        ).to_arrow_table()
    return WrittenFile(STATUS_COUNTS, target, *_write_file(target, STATUS_COUNTS_SCHEMA, counts.to_batches()))


def _write_file(target: Path, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> tuple[int, int]:
    """Stream `batches` into `target` through a temporary file renamed over it; (rows, bytes)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".part.{uuid.uuid4().hex}.tmp")
    rows = 0
    try:
        with pq.ParquetWriter(temporary, schema, compression="zstd", write_statistics=True) as writer:
            for batch in batches:
                writer.write_batch(batch.cast(schema) if batch.schema != schema else batch)
                rows += batch.num_rows
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return rows, target.stat().st_size
