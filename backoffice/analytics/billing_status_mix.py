"""How the (dossier, supplier) billing statuses are spread, snapshot by snapshot over the range."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from backoffice.analytics.archive import STATUS_COUNTS_SCHEMA, status_counts_path
from backoffice.analytics.reader import Filters, connect, query, snapshot_dates


def billing_status_mix(root: Path, filters: Filters) -> pl.DataFrame:
    """Per snapshot date and status (outputs.md): the number of (dossier, supplier) rows and their
    share of the day's rows. Read from the monthly counts the archive keeps beside the daily
    supplier_billing_status files. Columns: date, status, rows, share (a fraction, 4 decimals)."""
    days = [d for d in snapshot_dates(root, "supplier_billing_status") if filters.start <= d <= filters.end]
    months = sorted({status_counts_path(root, d) for d in days})
    with connect() as con:
        if months:
            paths = ", ".join("'" + str(p).replace("'", "''") + "'" for p in months)
            source = f"read_parquet([{paths}])"
        else:
            con.register("counts_empty", STATUS_COUNTS_SCHEMA.empty_table())
            source = "counts_empty"
        return query(
            con,
            f"""SELECT date, status, sum(rows)::INTEGER AS rows,
                       round(sum(rows) / sum(sum(rows)) OVER (PARTITION BY date), 4)::DECIMAL(5, 4) AS share
                FROM {source}
                WHERE date BETWEEN $start AND $end
                  AND ($brand IS NULL OR brand = $brand) AND ($supplier IS NULL OR supplier_code = $supplier)
                GROUP BY date, status ORDER BY date, status""",
            {"start": filters.start, "end": filters.end, "brand": filters.brand, "supplier": filters.supplier},
        )
