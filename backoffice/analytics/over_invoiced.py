"""What suppliers invoiced beyond the tolerance, per supplier, on the latest snapshot of the range."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from backoffice.analytics.reader import Filters, connect, latest_snapshot, query, relation

TABLE = "supplier_billing_status"


def over_invoiced_by_supplier(root: Path, filters: Filters) -> pl.DataFrame:
    """Rows in status over_invoiced, per supplier and currency: how many dossiers and the amount
    invoiced over what the dossiers expect (sum of `difference`). Largest amount first.
    Columns: as_of, supplier_code, currency, dossiers, over_invoiced_amount."""
    as_of = latest_snapshot(root, TABLE, filters)
    with connect() as con:
        name = relation(con, root, TABLE, [as_of] if as_of else [])
        return query(
            con,
            f"""SELECT date AS as_of, supplier_code, currency, count(*)::INTEGER AS dossiers,
                       sum(difference) AS over_invoiced_amount
                FROM {name}
                WHERE status = 'over_invoiced' AND ($brand IS NULL OR brand = $brand)
                  AND ($supplier IS NULL OR supplier_code = $supplier)
                GROUP BY ALL ORDER BY over_invoiced_amount DESC, supplier_code, currency""",
            {"brand": filters.brand, "supplier": filters.supplier},
        )
