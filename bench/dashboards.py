"""Every dashboard view over a 3-year Parquet archive, timed as the Dashboards page runs it.

The archive is synthetic but has the archive's exact layout and schemas: one partition a day for
three years, each table's rows drawn per column (statuses, states, currencies, brands, suppliers,
ageing dates spread over every bucket, amounts in cents) and written through the archive's own
writer (`write_partition`: zstd Parquet, temporary file, rename). It is written once per scale
under .data/bench/ and reused. Each view is timed on the whole 3 years, with and without a brand
or supplier filter; a run opens its own DuckDB connection, as a page run does.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from backoffice.analytics.archive import TABLES, Table, write_partition, write_status_counts
from backoffice.analytics.billing_status_mix import billing_status_mix
from backoffice.analytics.client_balance_ageing import client_balance_ageing
from backoffice.analytics.margin import margin_by_brand_destination_month
from backoffice.analytics.over_invoiced import over_invoiced_by_supplier
from backoffice.analytics.reader import Filters
from backoffice.analytics.supplier_invoice_ageing import supplier_invoice_ageing
from backoffice.analytics.unmatched_invoice_ageing import unmatched_invoice_ageing
from bench import harness
from bench.report import Figure

TARGET_S = 1.0
DAYS = 3 * 365 + 1
START = date(2023, 1, 1)
# Rows per table per daily partition: small gives a few hundred thousand rows per table over the
# 3 years; full, a large operator's (every open dossier and invoice line in each day's snapshot).
ROWS_PER_DAY = {"tiny": 40, "small": 300, "medium": 3_000, "full": 20_000}
TINY_DAYS = 40
SEED = 20260301

BRANDS = ("Azur Voyages", "Horizons", "Terra Nova", "Océane")
DESTINATIONS = (
    ("Lisbonne", "PT"),
    ("Rome", "IT"),
    ("Marrakech", "MA"),
    ("New York", "US"),
    ("Barcelone", "ES"),
    ("Athènes", "GR"),
    ("Dakar", "SN"),
    ("Reykjavik", "IS"),
)
SUPPLIERS = tuple(f"SUP{n:03d}" for n in range(1, 41))
DOMAINS = {
    "status": ("not_invoiced", "invoiced", "partially_invoiced", "over_invoiced"),
    "supplier_status": ("not_invoiced", "invoiced", "partially_invoiced", "over_invoiced"),
    "state": ("auto_matched", "auto_matched", "auto_matched", "confirmed", "suggested", "unmatched", "rejected"),
    "match_method": ("dossier_number", "supplier_reference", "suggested", "manual"),
    "kind": ("invoice",) * 9 + ("credit_note",),
    "currency": ("EUR",) * 8 + ("USD", "GBP"),
    "computed_from": ("actual", "estimated"),
    "brand": BRANDS,
    "supplier_code": SUPPLIERS,
    "journal_code": ("VE", "AC", "BQ", "OD"),
}
# Days relative to the snapshot's day, so every ageing bucket and the departure months are filled.
DATE_SPREAD = {
    "next_payment_due_date": (-150, 60),
    "invoice_date": (-150, 0),
    "due_date": (-120, 30),
    "departure_date": (-60, 300),
    "last_invoice_date": (-150, 0),
}


def _decimal(cents: np.ndarray, kind: pa.Decimal128Type) -> pa.Array:
    """Exact decimals from integer units of the type's scale, without a Python object per value."""
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # the sign, extended to the high word
    return pa.Array.from_buffers(kind, len(cents), [None, pa.py_buffer(words.tobytes())])


def _column(name: str, kind: pa.DataType, rng: np.random.Generator, day: date, n: int) -> pa.Array:
    if name in DOMAINS:
        return pa.array(np.array(DOMAINS[name], dtype=object)[rng.integers(0, len(DOMAINS[name]), n)], type=kind)
    if name == "destination":
        return pa.array([DESTINATIONS[i][0] for i in rng.integers(0, len(DESTINATIONS), n)], type=kind)
    if name == "destination_country":
        return pa.array([DESTINATIONS[i][1] for i in rng.integers(0, len(DESTINATIONS), n)], type=kind)
    if name in ("dossier_number", "invoice_number", "source_id", "piece_ref"):
        return pa.array([f"BK{day.year}{i:06d}" for i in rng.integers(0, 400_000, n)], type=kind)
    if isinstance(kind, pa.Decimal128Type) and kind.scale > 2:  # rates and shares: 0 to 1
        return _decimal(rng.integers(0, 10**kind.scale + 1, n), kind)
    if isinstance(kind, pa.Decimal128Type):  # amounts in cents, some negative where the column allows it
        low = -20_000 if name in ("difference", "client_balance_due") else 0
        return _decimal(rng.integers(low, 500_000, n), kind)
    if kind == pa.date32():
        low, high = DATE_SPREAD.get(name, (-30, 0))
        days = (day - date(1970, 1, 1)).days + rng.integers(low, high + 1, n)
        return pa.array(days.astype(np.int32), type=pa.int32()).cast(pa.date32())
    if pa.types.is_timestamp(kind):
        seconds = (day - date(1970, 1, 1)).days * 86_400 + rng.integers(0, 86_400, n)
        return pa.array(seconds * 1_000_000, type=pa.int64()).cast(kind)
    if pa.types.is_integer(kind):
        return pa.array(rng.integers(1, 200, n), type=kind)
    return pa.array([f"{name}-{i}" for i in rng.integers(0, 1_000, n)], type=kind)


def _partition(table: Table, rng: np.random.Generator, day: date, n: int) -> pa.RecordBatch:
    schema = table.schema
    return pa.RecordBatch.from_arrays([_column(f.name, f.type, rng, day, n) for f in schema], schema=schema)


def synthetic_archive(root: Path, days: int, rows_per_day: int, seed: int = SEED) -> int:
    """Write `days` daily partitions of every archived table from START; returns the rows per table."""
    rng = np.random.default_rng(seed)
    for offset in range(days):
        day = START + timedelta(days=offset)
        for table in TABLES:
            write_partition(root, table, day, iter([_partition(table, rng, day, rows_per_day)]))
        if offset == days - 1 or (day + timedelta(days=1)).month != day.month:
            write_status_counts(root, day)  # the archive rewrites it every day; once a month is the same
    return days * rows_per_day


def _archive(scale: harness.Scale) -> tuple[Path, int, int]:
    days = TINY_DAYS if scale.name == "tiny" else DAYS
    per_day = ROWS_PER_DAY[scale.name]
    root = harness.DATA_ROOT / f"archive-v2-{scale.name}-{days}x{per_day}-{SEED}"
    done = root / ".complete"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        synthetic_archive(root, days, per_day)
        done.touch()
    return root, days, per_day


VIEWS: tuple[tuple[str, Callable[[Path, Filters], pl.DataFrame], str], ...] = (
    ("Billing status mix over time", billing_status_mix, "monthly status counts of every day of the range"),
    ("Over-invoiced amounts by supplier", over_invoiced_by_supplier, "latest snapshot"),
    ("Unmatched invoice ageing", unmatched_invoice_ageing, "latest snapshot"),
    ("Client balances due (ageing)", client_balance_ageing, "latest snapshot"),
    ("Supplier invoice ageing", supplier_invoice_ageing, "latest snapshot"),
    ("Margin per brand / destination / month", margin_by_brand_destination_month, "latest snapshot"),
)


def measure(scale: harness.Scale) -> list[Figure]:
    root, days, per_day = _archive(scale)
    end = START + timedelta(days=days - 1)
    variants = {
        "all": Filters(START, end),
        "brand": Filters(START, end, brand=BRANDS[0]),
        "supplier": Filters(START, end, supplier=SUPPLIERS[0]),
    }
    repeats = max(scale.repeats, 5)
    figures = []
    for name, view, reads in VIEWS:
        view(root, variants["all"])  # the first read warms the file system cache, as a page's second run
        timings = {label: harness.timed(lambda v=view, f=f: v(root, f), repeats) for label, f in variants.items()}
        worst = max(t.median_s for t in timings.values())
        rows = view(root, variants["all"]).height
        about = (
            f"Over a synthetic archive of {days:,} daily partitions x {per_day:,} rows per table "
            f"({days * per_day:,} rows per table, 7 tables; bench/dashboards.py); the view reads the {reads}. "
            f"Median of {repeats} runs of the backoffice.analytics function (DuckDB, 2 threads, a fresh "
            f"connection a run, result as a polars frame of {rows:,} rows), the worst of three filters: "
            "none, one brand, one supplier."
        )
        details = [
            "Medians (s): "
            + ", ".join(f"{label} {t.median_s:.3f}" for label, t in timings.items())
            + "; runs: "
            + "; ".join(f"{label} " + ", ".join(f"{r:.3f}" for r in t.runs_s) for label, t in timings.items())
        ]
        figures.append(
            Figure(
                f"Dashboard: {name}",
                f"<= {TARGET_S:.0f} s",
                f"{worst:.3f} s",
                f"{worst / TARGET_S:.2f}",
                worst <= TARGET_S,
                about,
                details,
            )
        )
    return figures
