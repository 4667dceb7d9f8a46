"""Supplier invoice lines no dossier is counted for yet, per supplier and age, on the latest snapshot."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from backoffice.analytics.reader import Filters, bucket_sql, connect, latest_snapshot, query, relation

TABLE = "supplier_invoice_line_matches"
UNMATCHED = ("unmatched", "suggested", "rejected")


def unmatched_invoice_ageing(root: Path, filters: Filters) -> pl.DataFrame:
    """Lines in state unmatched, suggested (waiting for an accountant) or rejected, per supplier,
    bucket (days since the invoice date) and currency, with their signed amount.
    Columns: as_of, supplier_code, bucket, currency, lines, amount."""
    as_of = latest_snapshot(root, TABLE, filters)
    with connect() as con:
        name = relation(con, root, TABLE, [as_of] if as_of else [])
        return query(
            con,
            f"""SELECT date AS as_of, supplier_code,
                       {bucket_sql("greatest(date_diff('day', invoice_date, date), 0)")} AS bucket, currency,
                       count(*)::INTEGER AS lines,
                       sum(CASE WHEN kind = 'credit_note' THEN -amount_incl_tax ELSE amount_incl_tax END) AS amount
                FROM {name}
                WHERE state IN {UNMATCHED} AND ($supplier IS NULL OR supplier_code = $supplier)
                GROUP BY ALL ORDER BY as_of, supplier_code, bucket, currency""",
            {"supplier": filters.supplier},
        )
