"""What clients still owe, by how long it has been due, on the latest snapshot of the range."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from backoffice.analytics.reader import Filters, bucket_sql, connect, latest_snapshot, query, relation

TABLE = "dossier_billing_status"


def client_balance_ageing(root: Path, filters: Filters) -> pl.DataFrame:
    """Per bucket and currency: dossiers with a balance due and the amount. A balance is aged from
    its first uncovered schedule item (`next_payment_due_date`): items are covered in due order,
    so that one is the oldest unpaid. No item uncovered, or not due yet: `not_due`.
    Columns: as_of, bucket, currency, dossiers, balance_due."""
    as_of = latest_snapshot(root, TABLE, filters)
    with connect() as con:
        name = relation(con, root, TABLE, [as_of] if as_of else [])
        age = "date_diff('day', next_payment_due_date, date)"
        return query(
            con,
            f"""SELECT date AS as_of, {bucket_sql(f"coalesce({age}, -1)")} AS bucket, currency,
                       count(*)::INTEGER AS dossiers, sum(client_balance_due) AS balance_due
                FROM {name}
                WHERE client_balance_due > 0 AND ($brand IS NULL OR brand = $brand)
                GROUP BY ALL ORDER BY as_of, bucket, currency""",
            {"brand": filters.brand},
        )
