"""The dossier's "Supplier invoices" tab: the invoice lines matched or suggested to one dossier, and
the billing status per supplier, read from marts.supplier_invoice_line_matches and
marts.supplier_billing_status for that dossier alone. Those views serve a filter on one dossier
from their indexes (docs/dbt.md, "Views read for one dossier"), so the tab shows exactly what the
marts say, decisions included, in a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class MatchedLine:
    supplier_code: str
    supplier_name: str | None
    invoice_number: str
    line_number: int
    kind: str
    invoice_date: date
    currency: str
    reference: str | None
    description: str | None
    line_amount: Decimal  # the line's amount tax included
    allocated: Decimal  # this dossier's part: the whole line unless an accountant split it
    state: str  # as the mart: auto_matched, suggested, confirmed
    match_method: str
    confidence: Decimal

    @property
    def shown_state(self) -> str:
        if self.state == "auto_matched":
            return "automatic"
        if self.state == "confirmed" and self.match_method == "manual":
            return "manual"
        return self.state

    @property
    def is_split(self) -> bool:
        return self.allocated != self.line_amount


@dataclass(frozen=True)
class SupplierBilling:
    supplier_code: str
    supplier_name: str | None
    currency: str
    expected_amount: Decimal
    invoiced_amount: Decimal
    difference: Decimal
    tolerance: Decimal
    status: str
    last_invoice_date: date | None
    written_off_amount: Decimal  # write-offs net of undos: the status takes them as settled


@dataclass(frozen=True)
class DossierSupplierInvoices:
    lines: tuple[MatchedLine, ...]
    billing: tuple[SupplierBilling, ...]
    built: bool = True  # False before dbt first built the matching and the seeds: nothing to read yet


_LINES = sa.text(
    """SELECT m.supplier_code, s.name AS supplier_name, m.invoice_number, m.line_number, m.kind, i.invoice_date,
              m.currency, l.reference, l.description, l.amount_incl_tax AS line_amount,
              m.amount_incl_tax AS allocated, m.state, m.match_method, m.confidence
       FROM marts.supplier_invoice_line_matches AS m
       JOIN app.supplier_invoice_lines AS l USING (supplier_code, invoice_number, line_number)
       JOIN app.supplier_invoices AS i USING (supplier_code, invoice_number)
       LEFT JOIN app.suppliers AS s ON s.supplier_code = m.supplier_code
       WHERE m.dossier_number = :d AND m.state IN ('auto_matched', 'suggested', 'confirmed')
       ORDER BY m.supplier_code, i.invoice_date, m.invoice_number, m.line_number"""
)

_BILLING = sa.text(
    """SELECT b.supplier_code, s.name AS supplier_name, b.currency, b.expected_amount, b.invoiced_amount,
              b.difference, b.tolerance, b.status, b.last_invoice_date, b.written_off_amount
       FROM marts.supplier_billing_status AS b
       LEFT JOIN app.suppliers AS s ON s.supplier_code = b.supplier_code
       WHERE b.dossier_number = :d
       ORDER BY b.supplier_code"""
)


def read(conn: Connection, dossier_number: str) -> DossierSupplierInvoices:
    """The supplier invoice lines of one dossier (split lines: its part) and its billing per supplier."""
    built = conn.execute(
        sa.text(
            "SELECT to_regclass('marts.supplier_invoice_line_matches') IS NOT NULL "
            "AND to_regclass('marts.supplier_billing_status') IS NOT NULL"
        )
    ).scalar_one()
    if not built:
        return DossierSupplierInvoices((), (), built=False)
    params = {"d": dossier_number}
    lines = tuple(
        MatchedLine(
            r.supplier_code,
            r.supplier_name,
            r.invoice_number,
            r.line_number,
            r.kind,
            r.invoice_date,
            r.currency.strip(),
            r.reference,
            r.description,
            r.line_amount,
            r.allocated,
            r.state,
            r.match_method,
            Decimal(r.confidence).quantize(Decimal("0.0001")),
        )
        for r in conn.execute(_LINES, params)
    )
    billing = tuple(SupplierBilling(**r._mapping) for r in conn.execute(_BILLING, params))
    return DossierSupplierInvoices(lines, billing)
