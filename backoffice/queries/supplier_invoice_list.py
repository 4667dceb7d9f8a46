"""The accounting space's list of supplier invoices: searchable, newest first, with how many lines
are still open (suggested, unmatched or rejected: waiting for an accountant).

A line's state is computed as the workbench computes it (queries/reconciliation.FROM), for the
lines of the invoices listed only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from backoffice.domain.errors import InvalidInput
from backoffice.queries import reconciliation as workbench

MAX_TEXT = 100
LIMIT = 100


@dataclass(frozen=True)
class InvoiceRow:
    supplier_code: str
    supplier_name: str | None
    invoice_number: str
    kind: str
    invoice_date: date
    due_date: date | None
    currency: str
    origin: str  # ingestion | manual
    total_incl_tax: Decimal  # as written: a credit note's total is positive, its kind gives the sign
    lines: int
    open_lines: int


def search_invoices(
    conn: Connection,
    *,
    text: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = LIMIT,
) -> list[InvoiceRow]:
    """Invoices whose number, supplier code or supplier name holds `text` (any case), dated in the
    range, newest first, at most `limit`."""
    wanted = (text or "").strip()
    if len(wanted) > MAX_TEXT:
        raise InvalidInput("text", f"is longer than {MAX_TEXT} characters")
    if date_from and date_to and date_from > date_to:
        raise InvalidInput("date_to", "is before date_from")
    clauses, params = ["true"], {"limit": limit, "open": list(workbench.OPEN_STATES)}
    if wanted:
        escaped = wanted.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        clauses.append("(i.invoice_number ILIKE :text OR i.supplier_code ILIKE :text OR s.name ILIKE :text)")
        params["text"] = f"%{escaped}%"
    if date_from:
        clauses.append("i.invoice_date >= :date_from")
        params["date_from"] = date_from
    if date_to:
        clauses.append("i.invoice_date <= :date_to")
        params["date_to"] = date_to
    rows = conn.execute(
        sa.text(
            f"""WITH listed AS (
                    SELECT i.supplier_code, s.name AS supplier_name, i.invoice_number, i.kind, i.invoice_date,
                           i.due_date, i.currency, i.origin
                    FROM app.supplier_invoices i LEFT JOIN app.suppliers s USING (supplier_code)
                    WHERE {" AND ".join(clauses)}
                    ORDER BY i.invoice_date DESC, i.supplier_code, i.invoice_number
                    LIMIT :limit
                )
                SELECT listed.*, t.total_incl_tax, t.lines, t.open_lines
                FROM listed
                CROSS JOIN LATERAL (
                    SELECT coalesce(sum(l.amount_incl_tax), 0) AS total_incl_tax, count(*) AS lines,
                           count(*) FILTER (WHERE st.state = ANY(:open)) AS open_lines
                    FROM {workbench.FROM}
                    WHERE l.supplier_code = listed.supplier_code AND l.invoice_number = listed.invoice_number
                ) t
                ORDER BY listed.invoice_date DESC, listed.supplier_code, listed.invoice_number"""
        ),
        params,
    )
    return [InvoiceRow(**{**r._mapping, "currency": r.currency.strip()}) for r in rows]


def suppliers(conn: Connection) -> list[tuple[str, str, str]]:
    """(supplier_code, name, currency) of every supplier, for the registration form."""
    rows = conn.execute(sa.text("SELECT supplier_code, name, currency FROM app.suppliers ORDER BY supplier_code"))
    return [(r.supplier_code, r.name, r.currency.strip()) for r in rows]
