"""Reading the archive with DuckDB: which snapshots exist, and a relation over the ones asked for.

Partitions are chosen from the folder names before DuckDB opens any file, so a view over the
latest snapshot reads one file per table whatever the archive's length.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from backoffice.analytics.archive import TABLES, partition_path

_SCHEMAS = {t.name: t.schema for t in TABLES}
AGEING_BUCKETS = ("not_due", "0-30", "31-60", "61-90", ">90")


@dataclass(frozen=True)
class Filters:
    """What every view is asked for: a date range (both ends included), a brand, a supplier.

    Views of the state on a day read the latest snapshot on or before `end` (and not before
    `start`); views over time read every snapshot in the range. None means all."""

    start: date
    end: date
    brand: str | None = None
    supplier: str | None = None


def snapshot_dates(root: Path, table: str) -> list[date]:
    """The days whose file of `table` is in place (a folder left without its file is skipped)."""
    folder = os.path.join(root, table)
    if not os.path.isdir(folder):
        return []
    days = []
    for name in os.listdir(folder):
        if name.startswith("date=") and os.path.isfile(os.path.join(folder, name, "part.parquet")):
            days.append(date.fromisoformat(name.removeprefix("date=")))
    return sorted(days)


def latest_snapshot(root: Path, table: str, filters: Filters) -> date | None:
    days = [d for d in snapshot_dates(root, table) if filters.start <= d <= filters.end]
    return days[-1] if days else None


def connect() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(config={"threads": 2})


def relation(con: duckdb.DuckDBPyConnection, root: Path, table: str, days: list[date]) -> str:
    """A FROM item over `table`'s snapshots of `days`, with their `date` column."""
    if days:
        paths = ", ".join(_literal(str(partition_path(root, table, d))) for d in days)
        return f"read_parquet([{paths}], hive_partitioning = true, hive_types = {{'date': DATE}})"
    # No snapshot: an empty table of the archive's columns, so every query still runs.
    name = f"{table}_empty"
    con.register(name, _SCHEMAS[table].append(pa.field("date", pa.date32())).empty_table())
    return name


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def query(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> pl.DataFrame:
    return con.sql(sql, params=params).pl()


def bucket_sql(age: str) -> str:
    """The ageing bucket of an age in days (negative: not due yet)."""
    return f"""CASE WHEN {age} < 0 THEN 'not_due' WHEN {age} <= 30 THEN '0-30' WHEN {age} <= 60 THEN '31-60'
                    WHEN {age} <= 90 THEN '61-90' ELSE '>90' END"""


def choices(root: Path, column: str, table: str) -> list[str]:
    """The values of a column in a table's latest snapshot (the page's filter lists)."""
    days = snapshot_dates(root, table)
    if not days:
        return []
    with connect() as con:
        name = relation(con, root, table, days[-1:])
        rows = con.execute(f"SELECT DISTINCT {column} FROM {name} WHERE {column} IS NOT NULL ORDER BY 1").fetchall()
    return [r[0] for r in rows]
