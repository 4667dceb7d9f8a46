"""The data-quality suites, defined in code: one per source, run on each loaded partition.

Each suite is a SQL query that selects the partition's rows from `raw` (the file path holds the
day folder, so `:prefix` selects what that day delivered) and the expectations those rows must
meet. Contract breaches are already rejected at ingestion; these suites catch what slips through
a parser change or a producer gone wrong, on what was actually loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backoffice.domain.money import CURRENCIES
from backoffice.ingest.countries import COUNTRIES


@dataclass(frozen=True)
class Suite:
    name: str
    source: str  # landing folder: bookings, payments, supplier_invoices
    sql: str
    expectations_factory: Any  # () -> list of GX expectations; built lazily (GX import is slow)


def _bookings() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeNull(column="dossier_number"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["dossier_number", "version", "updated_at"]),
        gxe.ExpectColumnValuesToMatchRegex(column="dossier_number", regex=r"^\S+$"),
        gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=sorted(CURRENCIES)),
        gxe.ExpectColumnValuesToBeInSet(column="destination_country", value_set=sorted(COUNTRIES)),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="return_date", column_B="departure_date", or_equal=True),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="updated_at", column_B="created_at", or_equal=True),
        # No dossier without a client.
        gxe.ExpectColumnValuesToNotBeNull(column="client_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="client_last_name"),
    ]


def _payments() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeNull(column="payment_id"),
        gxe.ExpectColumnValuesToBeUnique(column="payment_id"),
        gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=sorted(CURRENCIES)),
        gxe.ExpectColumnValuesToBeInSet(
            column="method", value_set=["card", "transfer", "gift_voucher", "holiday_voucher", "cheque", "cash"]
        ),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["captured", "failed", "refunded", "chargeback"]),
        gxe.ExpectColumnValuesToNotBeNull(column="amount"),
    ]


def _supplier_invoice_lines() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["supplier_code", "invoice_number", "line_number"]),
        gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=sorted(CURRENCIES)),
        gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=["invoice", "credit_note"]),
        # amount_incl_tax must equal amount_excl_tax * (1 + vat_rate) within a cent.
        gxe.ExpectColumnValuesToBeBetween(column="tax_gap", min_value=0, max_value=0.01),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="due_date", column_B="invoice_date", or_equal=True),
        gxe.ExpectColumnValuesToNotBeNull(column="supplier_code"),
    ]


SUITES = {
    "bookings": Suite(
        name="bookings",
        source="bookings",
        sql="""SELECT dossier_number, version, updated_at,
                      (payload->>'created_at')::timestamptz AS created_at,
                      payload->>'currency' AS currency,
                      payload->>'destination_country' AS destination_country,
                      (payload->>'departure_date')::date AS departure_date,
                      (payload->>'return_date')::date AS return_date,
                      payload->'client'->>'client_id' AS client_id,
                      payload->'client'->>'last_name' AS client_last_name
               FROM raw.booking_snapshots WHERE file LIKE :prefix""",
        expectations_factory=_bookings,
    ),
    "payments": Suite(
        name="payments",
        source="payments",
        sql="""SELECT payment_id, currency, method, status, amount::text AS amount
               FROM raw.payments WHERE file LIKE :prefix""",
        expectations_factory=_payments,
    ),
    "supplier_invoice_lines": Suite(
        name="supplier_invoice_lines",
        source="supplier_invoices",
        sql="""SELECT supplier_code, invoice_number, line_number, kind, currency, invoice_date,
                      coalesce(due_date, invoice_date) AS due_date,
                      abs(amount_incl_tax - round(amount_excl_tax * (1 + vat_rate), 2)) AS tax_gap
               FROM raw.supplier_invoice_lines WHERE file LIKE :prefix""",
        expectations_factory=_supplier_invoice_lines,
    ),
}
