"""Supplier invoices by age (days since the invoice date), on the latest snapshot of the range."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from backoffice.analytics.reader import Filters, bucket_sql, connect, latest_snapshot, query, relation

TABLE = "supplier_invoice_line_matches"
# The states that count in invoiced_amount (outputs.md): the rest is still to reconcile.
COUNTED = ("auto_matched", "confirmed")


def supplier_invoice_ageing(root: Path, filters: Filters) -> pl.DataFrame:
    """Per bucket and currency: invoices, their signed amount (credit notes negative) and the part
    of it not reconciled yet (lines neither auto-matched nor confirmed). An invoice dated after the
    snapshot counts as 0 days old. Columns: as_of, bucket, currency, invoices, amount, open_amount."""
    as_of = latest_snapshot(root, TABLE, filters)
    with connect() as con:
        name = relation(con, root, TABLE, [as_of] if as_of else [])
        return query(
            con,
            f"""SELECT date AS as_of, {bucket_sql("greatest(date_diff('day', invoice_date, date), 0)")} AS bucket,
                       currency, count(DISTINCT (supplier_code, invoice_number))::INTEGER AS invoices,
                       sum(CASE WHEN kind = 'credit_note' THEN -amount_incl_tax ELSE amount_incl_tax END) AS amount,
                       sum(CASE WHEN state IN {COUNTED} THEN 0
                                WHEN kind = 'credit_note' THEN -amount_incl_tax ELSE amount_incl_tax END) AS open_amount
                FROM {name}
                WHERE $supplier IS NULL OR supplier_code = $supplier
                GROUP BY ALL ORDER BY as_of, bucket, currency""",
            {"supplier": filters.supplier},
        )
