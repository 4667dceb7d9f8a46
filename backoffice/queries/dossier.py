"""Everything the Dossier page shows, read in one round trip on one connection.

The page has fourteen sections (the dossier row, travellers, services, the Devis, schedule,
payments, history, documents, invoices, refunds, modifications and their lines, travel-book
sendings and the versions they carried). Each is one statement filtered on the dossier number,
an index lookup; they are sent together in psycopg's pipeline mode and their results read after
a single round trip, so the page no longer waits for the server fourteen times in a row (on a
busy machine each wait is a scheduling delay: docs/scaling.md, "The dossier page"). The statements
and the objects built from them are the services' own list readers' (`list_documents`,
`list_invoices`, `list_refunds`, `list_modifications`, `list_sendings`); a test holds them equal.

The Devis comes from the dbt view marts.dossier_price_lines, which decides which lines are
active (current booking version, modifications, regulations and their reversals). The view is
written so that the `WHERE dossier_number = ...` below reaches the indexes of app.price_lines,
app.dossiers and app.services: one dossier's Devis costs a few index lookups, whatever the number
of dossiers.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.rows import dict_row
from sqlalchemy.engine import Connection

from backoffice.domain.clock import accounting_today
from backoffice.domain.errors import NotFound
from backoffice.queries.search import MONEY_MOVING
from backoffice.services.client_invoices import ClientInvoice
from backoffice.services.documents import Document, DocumentVersion
from backoffice.services.modifications import _REQUEST_LINES, ModificationRequest, RequestLine
from backoffice.services.payments import DOSSIER_PAYMENTS
from backoffice.services.refunds import Refund
from backoffice.services.travel_book import Sending, SentDocument


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


# One dossier's Devis, in the Devis' order.
DEVIS_SQL = """SELECT line_key, service_id, service_kind, service_label, supplier_code, origin, label,
                      quantity, unit_sale_amount, sale_currency, sale_total, unit_purchase_amount,
                      purchase_currency, purchase_total, vat_rate, is_active, created_at, created_by, reason
               FROM marts.dossier_price_lines WHERE dossier_number = :number
               ORDER BY sort_order, line_key"""

# Every section's statement, on the one parameter :number (and :moving). From "documents" on they
# are the statements of the services' list readers, the two that depended on an earlier result
# (a request's lines, a sending's versions) reaching it through the dossier number instead.
SECTIONS: dict[str, str] = {
    "head": "SELECT * FROM app.dossiers WHERE dossier_number = :number",
    "travellers": """SELECT traveller_id, first_name, last_name, birth_date, kind FROM app.travellers
                     WHERE dossier_number = :number ORDER BY traveller_id""",
    "services": """SELECT service_id, kind, supplier_code, supplier_reference, label, start_date, end_date, status
                   FROM app.services WHERE dossier_number = :number ORDER BY start_date NULLS LAST, service_id""",
    "schedule": """SELECT seq, due_date, amount, kind, method FROM app.payment_schedule
                   WHERE dossier_number = :number ORDER BY due_date, seq""",
    "payments": """SELECT payment_id, received_at, method, amount, currency, status, provider,
                          provider_reference, payer_name, origin, voucher_code, reason, created_by, refund_of
                   FROM """
    + DOSSIER_PAYMENTS
    + " p ORDER BY received_at, payment_id",
    "history": """SELECT occurred_at, actor, action, outcome, detail, before, after FROM audit.events
                  WHERE dossier_number = :number ORDER BY occurred_at DESC, id DESC""",
    "devis": DEVIS_SQL,
    "documents": f"""SELECT d.dossier_number, d.title, d.category, d.created_at, d.created_by,
                            {", ".join(f"v.{name}" for name in DocumentVersion.__dataclass_fields__)}
                     FROM app.documents d JOIN app.document_versions v ON v.document_id = d.id
                     WHERE d.dossier_number = :number ORDER BY d.id, v.version DESC""",
    "invoices": """SELECT i.invoice_number, i.kind, i.issue_date, i.cited_invoice, i.reason, i.currency,
                          i.total_amount, i.pdf_sha256, i.mail_id IS NOT NULL AS mailed, i.issued_at, i.issued_by,
                          CASE WHEN i.kind = 'invoice' THEN i.total_amount - coalesce(
                              (SELECT sum(c.total_amount) FROM app.client_invoices c
                               WHERE c.cited_invoice = i.invoice_number), 0) ELSE 0 END AS creditable
                   FROM app.client_invoices i WHERE i.dossier_number = :number
                   ORDER BY i.issued_at, i.invoice_number""",
    "refunds": f"""SELECT {", ".join(Refund.__dataclass_fields__)} FROM app.refunds WHERE dossier_number = :number
                   ORDER BY requested_at DESC, id DESC""",
    "modifications": """SELECT m.*,
                               CASE WHEN m.kind = 'cancellation' AND m.state = 'pending' THEN greatest(
                                   (SELECT coalesce(sum(amount), 0) FROM app.dossier_payments
                                    WHERE dossier_number = m.dossier_number AND status = ANY(:moving))
                                   - (SELECT coalesce(sum(quantity * unit_sale_amount), 0)
                                      FROM app.modification_request_lines WHERE request_id = m.id AND action = 'fee'),
                                   0) END AS refund_estimate
                        FROM app.modification_requests m WHERE m.dossier_number = :number ORDER BY m.id DESC""",
    "request_lines": _REQUEST_LINES
    + """ WHERE r.request_id IN (SELECT id FROM app.modification_requests WHERE dossier_number = :number)
          ORDER BY r.request_id, r.seq""",
    "sendings": """SELECT s.id, s.sent_at, s.sent_by, s.reason, s.attached, s.mail_id, m.state AS mail_state,
                          m.to_address, s.document_version_ids
                   FROM app.travel_book_sendings s JOIN app.outbox_mails m ON m.id = s.mail_id
                   WHERE s.dossier_number = :number ORDER BY s.id DESC""",
    "sent_versions": """SELECT v.id AS version_id, v.document_id, d.title, v.version, v.original_filename AS filename
                        FROM app.document_versions v JOIN app.documents d ON d.id = v.document_id
                        WHERE v.id IN (SELECT unnest(s.document_version_ids) FROM app.travel_book_sendings s
                                       WHERE s.dossier_number = :number)""",
}


@functools.lru_cache(maxsize=8)
def _compiled(dialect: sa.Dialect) -> dict[str, sa.Compiled]:
    """The sections' statements in the driver's own placeholders, compiled once per engine."""
    return {name: sa.text(sql).compile(dialect=dialect) for name, sql in SECTIONS.items()}


def _read_sections(conn: Connection, params: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The rows of every section, the statements sent at once and read after one round trip.

    On the connection's own psycopg connection, in its transaction (begun here if the
    connection had none, as SQLAlchemy would on a first statement); a database error comes out
    as SQLAlchemy's, as from `conn.execute`."""
    if not conn.in_transaction():
        conn.begin()
    raw = conn.connection.driver_connection
    statements = _compiled(conn.dialect)
    cursors = {name: raw.cursor(row_factory=dict_row) for name in statements}
    try:
        # Leaving the block sends the one Sync and receives every result into its cursor.
        with raw.pipeline():
            for name, statement in statements.items():
                cursors[name].execute(str(statement), statement.construct_params(params))
        return {name: cursor.fetchall() for name, cursor in cursors.items()}
    except psycopg.Error as exc:
        if conn.dialect.is_disconnect(exc, raw, None):
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance("dossier page sections", params, exc, psycopg.Error) from exc


def _devis(rows: list[dict[str, Any]]) -> Devis:
    lines = tuple(PriceLine(**r) for r in rows)
    purchases: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for line in lines:
        if line.is_active:
            purchases[line.purchase_currency] += line.purchase_total
    sale = sum((line.sale_total for line in lines if line.is_active), Decimal("0.00"))
    return Devis(lines=lines, sale_total=sale, purchase_totals=dict(sorted(purchases.items())))


def _documents(rows: list[dict[str, Any]]) -> tuple[Document, ...]:
    """As `list_documents`: oldest first, each with its versions newest first."""
    heads: dict[int, dict[str, Any]] = {}
    versions: dict[int, list[DocumentVersion]] = {}
    for row in rows:
        heads.setdefault(
            row["document_id"], {k: row[k] for k in ("dossier_number", "title", "category", "created_at", "created_by")}
        )
        versions.setdefault(row["document_id"], []).append(
            DocumentVersion(**{k: row[k] for k in DocumentVersion.__dataclass_fields__})
        )
    return tuple(Document(id=i, versions=tuple(versions[i]), **head) for i, head in heads.items())


def _modifications(requests: list[dict[str, Any]], lines: list[dict[str, Any]]) -> tuple[ModificationRequest, ...]:
    """As `list_modifications`: newest first, each with its lines."""
    grouped: dict[int, list[RequestLine]] = defaultdict(list)
    for row in lines:
        grouped[row["request_id"]].append(RequestLine(**{k: v for k, v in row.items() if k != "request_id"}))
    fields = ModificationRequest.__dataclass_fields__
    return tuple(
        ModificationRequest(
            **{k: v for k, v in r.items() if k in fields and k not in ("unmailed", "lines")},
            unmailed=tuple(r["unmailed"]),
            lines=tuple(grouped.get(r["id"], ())),
        )
        for r in requests
    )


def _sendings(rows: list[dict[str, Any]], versions: list[dict[str, Any]]) -> tuple[Sending, ...]:
    """As `list_sendings`: newest first, each with the versions it carried in document order."""
    sent = {r["version_id"]: SentDocument(**r) for r in versions}
    return tuple(
        Sending(
            **{k: v for k, v in row.items() if k != "document_version_ids"},
            documents=tuple(sorted((sent[i] for i in row["document_version_ids"]), key=lambda d: d.document_id)),
        )
        for row in rows
    )


def dossier_view(conn: Connection, dossier_number: str, *, today: date | None = None) -> DossierView:
    """The whole dossier; NotFound if there is no dossier with that number."""
    rows = _read_sections(conn, {"number": dossier_number, "moving": list(MONEY_MOVING)})
    if not rows["head"]:
        raise NotFound(f"dossier {dossier_number} does not exist")
    head = rows["head"][0]
    summary = Summary(**{f: head[f] for f in Summary.__dataclass_fields__})
    client = Client(**{f: head[f if f == "client_id" else f"client_{f}"] for f in Client.__dataclass_fields__})
    schedule = tuple(ScheduledPayment(**r) for r in rows["schedule"])
    payments = tuple(Payment(**r) for r in rows["payments"])
    today = today or accounting_today()
    return DossierView(
        summary=summary,
        client=client,
        travellers=tuple(Traveller(**r) for r in rows["travellers"]),
        services=tuple(Service(**r) for r in rows["services"]),
        devis=_devis(rows["devis"]),
        schedule=schedule,
        payments=payments,
        paid_total=sum((p.amount for p in payments if p.status in MONEY_MOVING), Decimal("0.00")),
        due_to_date=sum((s.amount for s in schedule if s.due_date <= today), Decimal("0.00")),
        history=tuple(AuditEvent(**r) for r in rows["history"]),
        documents=_documents(rows["documents"]),
        client_invoices=tuple(ClientInvoice(**r) for r in rows["invoices"]),
        refunds=tuple(Refund(**r) for r in rows["refunds"]),
        modifications=_modifications(rows["modifications"], rows["request_lines"]),
        travel_book_complete=head["travel_book_complete"],
        travel_book_mode=head["travel_book_mode"],
        travel_book_sendings=_sendings(rows["sendings"], rows["sent_versions"]),
    )
