"""Margin per brand, destination and departure month, on the latest snapshot of the range."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from backoffice.analytics.reader import Filters, connect, latest_snapshot, query, relation

TABLE = "dossier_margin"


def margin_by_brand_destination_month(root: Path, filters: Filters) -> pl.DataFrame:
    """Dossiers departing within the range, per brand, destination, month of departure and currency:
    sale total, margin and margin VAT, each the actual figure once the dossier is fully invoiced
    (`computed_from = 'actual'`), else the estimate, as the OD journal posts it (docs/accounting.md).
    Columns: as_of, brand, destination, month, currency, dossiers, sale_total, margin, margin_vat."""
    as_of = latest_snapshot(root, TABLE, filters)
    with connect() as con:
        name = relation(con, root, TABLE, [as_of] if as_of else [])
        return query(
            con,
            f"""SELECT date AS as_of, brand, destination, date_trunc('month', departure_date)::DATE AS month,
                       currency, count(*)::INTEGER AS dossiers, sum(sale_total) AS sale_total,
                       sum(CASE computed_from WHEN 'actual' THEN margin_actual ELSE margin_estimated END) AS margin,
                       sum(CASE computed_from WHEN 'actual' THEN margin_vat_actual ELSE margin_vat_estimated END)
                           AS margin_vat
                FROM {name}
                WHERE departure_date BETWEEN $start AND $end AND ($brand IS NULL OR brand = $brand)
                GROUP BY ALL ORDER BY as_of, brand, destination, month, currency""",
            {"start": filters.start, "end": filters.end, "brand": filters.brand},
        )
