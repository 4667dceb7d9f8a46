"""Everything the Dossier page shows, read in one go on one connection.

The Devis comes from the dbt view marts.dossier_price_lines, which decides which lines are
active (current booking version, modifications, regulations and their reversals). The view is
written so that the `WHERE dossier_number = ...` below reaches the indexes of app.price_lines,
app.dossiers and app.services: one dossier's Devis costs a few index lookups, whatever the number
of dossiers (docs/scaling.md, "The dossier page").
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from backoffice.domain.errors import NotFound
from backoffice.queries.search import MONEY_MOVING
from backoffice.services.client_invoices import ClientInvoice, list_invoices
from backoffice.services.documents import Document, list_documents
from backoffice.services.modifications import ModificationRequest, list_modifications
from backoffice.services.payments import DOSSIER_PAYMENTS
from backoffice.services.refunds import Refund, list_refunds
from backoffice.services.travel_book import Sending, list_sendings


@dataclass(frozen=True)
class Summary:
    dossier_number: str
    status: str
    channel: str
    brand: str
    agency_code: str | None
    currency: str
    departure_date: date
    return_date: date
    destination: str
    destination_country: str
    sale_total: Decimal
    version: int
    platform_version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Client:
    client_id: str
    title: str | None
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    language: str
    address: dict[str, Any] | None


@dataclass(frozen=True)
class Traveller:
    traveller_id: str
    first_name: str
    last_name: str
    birth_date: date | None
    kind: str


@dataclass(frozen=True)
class Service:
    service_id: str
    kind: str
    supplier_code: str
    supplier_reference: str | None
    label: str
    start_date: date | None
    end_date: date | None
    status: str


@dataclass(frozen=True)
class PriceLine:
    line_key: str
    service_id: str | None
    service_kind: str | None
    service_label: str | None
    supplier_code: str | None
    origin: str
    label: str
    quantity: int
    unit_sale_amount: Decimal
    sale_currency: str
    sale_total: Decimal
    unit_purchase_amount: Decimal
    purchase_currency: str
    purchase_total: Decimal
    vat_rate: Decimal
    is_active: bool
    created_at: datetime
    created_by: str
    reason: str | None


@dataclass(frozen=True)
class Devis:
    lines: tuple[PriceLine, ...]
    sale_total: Decimal
    # Suppliers invoice in their own currencies, so purchases only add up per currency.
    purchase_totals: dict[str, Decimal]


@dataclass(frozen=True)
class ScheduledPayment:
    seq: int
    due_date: date
    amount: Decimal
    kind: str
    method: str


@dataclass(frozen=True)
class Payment:
    payment_id: str
    received_at: datetime
    method: str
    amount: Decimal
    currency: str
    status: str
    provider: str | None
    provider_reference: str | None
    payer_name: str | None
    origin: str
    voucher_code: str | None = None
    reason: str | None = None
    created_by: str = "platform"
    refund_of: str | None = None


@dataclass(frozen=True)
class AuditEvent:
    occurred_at: datetime
    actor: str
    action: str
    outcome: str
    detail: str | None
    before: Any
    after: Any


@dataclass(frozen=True)
class DossierView:
    summary: Summary
    client: Client
    travellers: tuple[Traveller, ...]
    services: tuple[Service, ...]
    devis: Devis
    schedule: tuple[ScheduledPayment, ...]
    payments: tuple[Payment, ...]
    paid_total: Decimal
    due_to_date: Decimal
    history: tuple[AuditEvent, ...]
    # The supplier invoices tab has its own reader (backoffice/queries/dossier_supplier_invoices.py).
    modifications: tuple[ModificationRequest, ...] = field(default=())
    documents: tuple[Document, ...] = field(default=())
    client_invoices: tuple[ClientInvoice, ...] = field(default=())
    refunds: tuple[Refund, ...] = field(default=())
    # The travel book: the agent's flag, the sending mode, and every sending, newest first.
    travel_book_complete: bool = False
    travel_book_mode: str = "automatic"
    travel_book_sendings: tuple[Sending, ...] = field(default=())

    @property
    def balance_outstanding(self) -> Decimal:
        """What fell due and was not paid (never negative: an advance is not a debt)."""
        return max(self.due_to_date - self.paid_total, Decimal("0.00"))


def _rows(conn: Connection, sql: str, number: str, **extra: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sa.text(sql), {"number": number, **extra}).mappings()]


# One dossier's Devis, in the Devis' order.
DEVIS_SQL = """SELECT line_key, service_id, service_kind, service_label, supplier_code, origin, label,
                      quantity, unit_sale_amount, sale_currency, sale_total, unit_purchase_amount,
                      purchase_currency, purchase_total, vat_rate, is_active, created_at, created_by, reason
               FROM marts.dossier_price_lines WHERE dossier_number = :number
               ORDER BY sort_order, line_key"""


def _devis(conn: Connection, number: str) -> Devis:
    lines = tuple(PriceLine(**r) for r in _rows(conn, DEVIS_SQL, number))
    purchases: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for line in lines:
        if line.is_active:
            purchases[line.purchase_currency] += line.purchase_total
    sale = sum((line.sale_total for line in lines if line.is_active), Decimal("0.00"))
    return Devis(lines=lines, sale_total=sale, purchase_totals=dict(sorted(purchases.items())))


def dossier_view(conn: Connection, dossier_number: str, *, today: date | None = None) -> DossierView:
    """The whole dossier; NotFound if there is no dossier with that number."""
    head = (
        conn.execute(sa.text("SELECT * FROM app.dossiers WHERE dossier_number = :number"), {"number": dossier_number})
        .mappings()
        .first()
    )
    if head is None:
        raise NotFound(f"dossier {dossier_number} does not exist")
    summary = Summary(**{f: head[f] for f in Summary.__dataclass_fields__})
    client = Client(**{f: head[f if f == "client_id" else f"client_{f}"] for f in Client.__dataclass_fields__})
    travellers = tuple(
        Traveller(**r)
        for r in _rows(
            conn,
            """SELECT traveller_id, first_name, last_name, birth_date, kind FROM app.travellers
               WHERE dossier_number = :number ORDER BY traveller_id""",
            dossier_number,
        )
    )
    services = tuple(
        Service(**r)
        for r in _rows(
            conn,
            """SELECT service_id, kind, supplier_code, supplier_reference, label, start_date, end_date, status
               FROM app.services WHERE dossier_number = :number ORDER BY start_date NULLS LAST, service_id""",
            dossier_number,
        )
    )
    schedule = tuple(
        ScheduledPayment(**r)
        for r in _rows(
            conn,
            """SELECT seq, due_date, amount, kind, method FROM app.payment_schedule
               WHERE dossier_number = :number ORDER BY due_date, seq""",
            dossier_number,
        )
    )
    payments = tuple(
        Payment(**r)
        for r in _rows(
            conn,
            """SELECT payment_id, received_at, method, amount, currency, status, provider,
                      provider_reference, payer_name, origin, voucher_code, reason, created_by, refund_of
               FROM """
            + DOSSIER_PAYMENTS
            + " p ORDER BY received_at, payment_id",
            dossier_number,
        )
    )
    history = tuple(
        AuditEvent(**r)
        for r in _rows(
            conn,
            """SELECT occurred_at, actor, action, outcome, detail, before, after FROM audit.events
               WHERE dossier_number = :number ORDER BY occurred_at DESC, id DESC""",
            dossier_number,
        )
    )
    today = today or date.today()
    return DossierView(
        summary=summary,
        client=client,
        travellers=travellers,
        services=services,
        devis=_devis(conn, dossier_number),
        schedule=schedule,
        payments=payments,
        paid_total=sum((p.amount for p in payments if p.status in MONEY_MOVING), Decimal("0.00")),
        due_to_date=sum((s.amount for s in schedule if s.due_date <= today), Decimal("0.00")),
        history=history,
        documents=tuple(list_documents(conn, dossier_number)),
        client_invoices=tuple(list_invoices(conn, dossier_number)),
        refunds=tuple(list_refunds(conn, dossier_number)),
        modifications=tuple(list_modifications(conn, dossier_number)),
        travel_book_complete=head["travel_book_complete"],
        travel_book_mode=head["travel_book_mode"],
        travel_book_sendings=tuple(list_sendings(conn, dossier_number)),
    )
