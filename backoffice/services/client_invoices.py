"""Client invoices and credit notes, issued from the Devis.

What an invoice holds: every active Devis line (as app.dossiers.sale_total counts them, see
backoffice.db.sale_total) minus what earlier invoices and credit notes of the dossier already
invoiced for that price line. The first issue invoices the whole Devis; after a modification or a
regulation changes it, the next issue holds only the difference: a complementary invoice when the
difference is positive (a line no longer active is taken back with a negative quantity), a credit
note citing the dossier's latest invoice when it is negative. A credit note on an invoice cancels
what is left of that invoice (its lines minus what credit notes citing it already credited).

Each document is numbered in its brand's series (FA invoices, AV credit notes; see
backoffice.invoicing.numbering) in the transaction that stores it, printed to a PDF/A-3 with its
Factur-X XML, stored with the PDF's SHA-256, and mailed to the client with the PDF attached (a
client without an address gets no mail; the audit event says so). All of it commits or nothing does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from backoffice.domain.errors import DomainError, InvalidInput, NotFound, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.invoicing import numbering, pdf
from backoffice.invoicing.document import CREDIT_NOTE, INVOICE, InvoiceDocument, Line
from backoffice.mail.outbox import Attachment, enqueue
from backoffice.services import audit, idempotency
from backoffice.services.unit_of_work import UnitOfWork

PERMISSION = "issue_invoice"
ISSUE = "issue_invoice"
CREDIT = "issue_credit_note"
MAX_REASON = 500
PDF = "application/pdf"


class InvoiceCorrupted(DomainError):
    """The stored PDF no longer matches the SHA-256 recorded when it was issued."""


@dataclass(frozen=True)
class ClientInvoice:
    invoice_number: str
    kind: str
    issue_date: date
    cited_invoice: str | None
    reason: str | None
    currency: str
    total_amount: Decimal
    pdf_sha256: str
    mailed: bool
    issued_at: datetime
    issued_by: str
    # What is left to credit on an invoice (0 for a credit note).
    creditable: Decimal


@dataclass(frozen=True)
class Preview:
    """What issuing from the Devis now would produce: kind None when there is nothing to invoice."""

    kind: str | None
    lines: tuple[Line, ...]
    cited_invoice: str | None

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))


def _reason(value: object, required: bool) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        if required:
            raise InvalidInput("reason", "is required for a credit note")
        return None
    if len(text) > MAX_REASON:
        raise InvalidInput("reason", f"is longer than {MAX_REASON} characters")
    return text


def _lines(rows: list[Any], sign: int) -> tuple[Line, ...]:
    """Document lines for signed amounts `wanted` of price lines (quantity, unit): the price line's
    unit amount and as many times its quantity as the amount holds, else one unit of the amount."""
    lines = []
    for number, row in enumerate(rows, start=1):
        wanted = sign * row.wanted
        full = row.quantity * row.unit_amount
        times = wanted / full if full else Decimal(0)
        if full and times == times.to_integral_value():
            lines.append(Line(number, row.label, int(times) * row.quantity, row.unit_amount, row.id))
        else:
            lines.append(Line(number, row.label, 1, wanted, row.id))
    return tuple(lines)


# Per active or once-invoiced price line of the dossier: what is still to invoice (the Devis amount
# minus what invoices added and credit notes took back). Active as in backoffice.db.sale_total.
_DIFFERENCE = sa.text(
    """WITH devis AS (
           SELECT l.id, l.label, l.quantity, l.unit_sale_amount AS unit_amount, l.origin, l.created_at,
                  CASE WHEN (l.origin <> 'booking' OR l.booking_version = d.platform_version)
                             AND (s.status IS DISTINCT FROM 'cancelled' OR l.origin = 'cancellation_fee')
                       THEN l.sale_total ELSE 0 END AS target
           FROM app.price_lines l
           JOIN app.dossiers d ON d.dossier_number = l.dossier_number
           LEFT JOIN app.services s ON s.dossier_number = l.dossier_number AND s.service_id = l.service_id
           WHERE l.dossier_number = :number),
       invoiced AS (
           SELECT il.price_line_id, sum(CASE WHEN i.kind = 'invoice' THEN il.amount ELSE -il.amount END) AS amount
           FROM app.client_invoice_lines il JOIN app.client_invoices i ON i.invoice_number = il.invoice_number
           WHERE i.dossier_number = :number GROUP BY il.price_line_id)
       SELECT d.id, d.label, d.quantity, d.unit_amount, d.target - coalesce(v.amount, 0) AS wanted
       FROM devis d LEFT JOIN invoiced v ON v.price_line_id = d.id
       WHERE d.target - coalesce(v.amount, 0) <> 0
       ORDER BY d.origin <> 'booking', d.created_at, d.id"""
)

# What is left to credit on one invoice, per line: its amount minus what credit notes citing it took back.
_CREDITABLE = sa.text(
    """SELECT il.price_line_id AS id, il.label, p.quantity, p.unit_sale_amount AS unit_amount,
              il.amount - coalesce((SELECT sum(cl.amount) FROM app.client_invoice_lines cl
                                    JOIN app.client_invoices c ON c.invoice_number = cl.invoice_number
                                    WHERE c.cited_invoice = il.invoice_number
                                      AND cl.price_line_id = il.price_line_id), 0) AS wanted
       FROM app.client_invoice_lines il JOIN app.price_lines p ON p.id = il.price_line_id
       WHERE il.invoice_number = :number
       ORDER BY il.line_number"""
)


def _latest_invoice(conn: Connection, dossier_number: str) -> str | None:
    return conn.execute(
        sa.text(
            """SELECT invoice_number FROM app.client_invoices WHERE dossier_number = :n AND kind = 'invoice'
               ORDER BY issue_date DESC, seq DESC LIMIT 1"""
        ),
        {"n": dossier_number},
    ).scalar()


def preview(conn: Connection, dossier_number: str) -> Preview:
    """What `issue_invoice` would issue for the dossier now."""
    rows = [r for r in conn.execute(_DIFFERENCE, {"number": dossier_number}) if r.wanted != 0]
    if not rows:
        return Preview(None, (), None)
    net = sum((r.wanted for r in rows), Decimal("0.00"))
    if net >= 0:
        return Preview(INVOICE, _lines(rows, 1), None)
    return Preview(CREDIT_NOTE, _lines(rows, -1), _latest_invoice(conn, dossier_number))


def _creditable(conn: Connection, invoice_number: str) -> tuple[Line, ...]:
    return _lines([r for r in conn.execute(_CREDITABLE, {"number": invoice_number}) if r.wanted != 0], 1)


def _seller(conn: Connection, brand: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            sa.text(
                """SELECT legal_name, address_line, postal_code, city, country, vat_number, siren, licence
                   FROM app.invoice_sellers WHERE brand IN (:brand, '*') ORDER BY brand = '*' LIMIT 1"""
            ),
            {"brand": brand},
        )
        .mappings()
        .first()
    )
    return None if row is None else {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}


def _buyer(dossier: Any) -> dict[str, Any]:
    address = dossier.client_address or {}
    name = " ".join(p for p in (dossier.client_title, dossier.client_first_name, dossier.client_last_name) if p)
    return {
        "name": name,
        "address_line": address.get("line1"),
        "postal_code": address.get("postal_code"),
        "city": address.get("city"),
        "country": (address.get("country") or "FR").upper(),
        "email": dossier.client_email,
    }


_DOSSIER = sa.text(
    """SELECT dossier_number, brand, currency, version, client_title, client_first_name, client_last_name,
              client_email, client_language, client_address
       FROM app.dossiers WHERE dossier_number = :n FOR UPDATE"""
)


def _issue(
    uow: UnitOfWork,
    actor: Actor,
    action: str,
    dossier: Any,
    kind: str,
    lines: tuple[Line, ...],
    cited: str | None,
    reason: str | None,
) -> dict[str, Any]:
    """Number, print, store and mail one document in the caller's transaction."""
    conn = uow.conn
    seller = _seller(conn, dossier.brand)
    if seller is None:
        error = NotFound(f"no invoice seller is configured for brand {dossier.brand} (app.invoice_sellers)")
        audit.refuse(uow, actor, action, dossier.dossier_number, error)
    cited_date = None
    if cited is not None:
        cited_date = conn.execute(
            sa.text("SELECT issue_date FROM app.client_invoices WHERE invoice_number = :n"), {"n": cited}
        ).scalar_one()
    number = numbering.take(conn, dossier.brand, numbering.CREDIT_NOTE if kind == CREDIT_NOTE else numbering.INVOICE)
    document = InvoiceDocument(
        number=number.text,
        kind=kind,
        issue_date=number.issue_date,
        dossier_number=dossier.dossier_number,
        currency=dossier.currency,
        language=dossier.client_language if dossier.client_language in pdf.LABELS else "fr",
        seller=seller,
        buyer=_buyer(dossier),
        lines=lines,
        cited_number=cited,
        cited_date=cited_date,
        reason=reason,
    )
    pdf_bytes, xml = pdf.render(document)
    mail_id = None
    if dossier.client_email:
        mail_id = enqueue(
            conn,
            kind=f"client_{kind}",
            language=document.language,
            to_address=dossier.client_email,
            context={
                "client_name": document.buyer["name"],
                "number": document.number,
                "dossier_number": document.dossier_number,
                "total": pdf.format_money(document.total, document.currency, document.language),
                "cited_number": cited or "",
            },
            dossier_number=dossier.dossier_number,
            actor=actor.login,
            attachments=[Attachment(f"{document.number}.pdf", PDF, pdf_bytes)],
        )
    pdf_sha256 = hashlib.sha256(pdf_bytes).hexdigest()
    conn.execute(
        sa.text(
            """INSERT INTO app.client_invoices (invoice_number, kind, brand, series, year, seq, issue_date,
                   dossier_number, cited_invoice, reason, currency, total_amount, language, buyer, seller,
                   xml_sha256, pdf_sha256, pdf, mail_id, issued_by)
               VALUES (:number, :kind, :brand, :series, :year, :seq, :issue_date, :dossier, :cited, :reason,
                   :currency, :total, :language, CAST(:buyer AS jsonb), CAST(:seller AS jsonb), :xml_sha256,
                   :pdf_sha256, :pdf, :mail_id, :actor)"""
        ),
        {
            "number": document.number,
            "kind": kind,
            "brand": number.brand,
            "series": number.series,
            "year": number.year,
            "seq": number.seq,
            "issue_date": number.issue_date,
            "dossier": dossier.dossier_number,
            "cited": cited,
            "reason": reason,
            "currency": document.currency,
            "total": document.total,
            "language": document.language,
            "buyer": json.dumps(document.buyer),
            "seller": json.dumps(seller),
            "xml_sha256": hashlib.sha256(xml).hexdigest(),
            "pdf_sha256": pdf_sha256,
            "pdf": pdf_bytes,
            "mail_id": mail_id,
            "actor": actor.login,
        },
    )
    conn.execute(
        sa.text(
            """INSERT INTO app.client_invoice_lines (invoice_number, line_number, price_line_id, label, quantity,
                   unit_amount)
               VALUES (:invoice, :line, :price_line, :label, :quantity, :unit)"""
        ),
        [
            {
                "invoice": document.number,
                "line": line.number,
                "price_line": line.price_line_id,
                "label": line.label,
                "quantity": line.quantity,
                "unit": line.unit_amount,
            }
            for line in lines
        ],
    )
    result = {
        "invoice_number": document.number,
        "kind": kind,
        "issue_date": document.issue_date.isoformat(),
        "total": str(document.total),
        "cited_invoice": cited,
        "pdf_sha256": pdf_sha256,
        "mail_id": mail_id,
    }
    audit.record(
        conn,
        actor.login,
        action,
        dossier_number=dossier.dossier_number,
        after={**result, "lines": len(lines), "reason": reason, "mailed": mail_id is not None},
    )
    return result


def _locked_dossier(uow: UnitOfWork, actor: Actor, action: str, dossier_number: str) -> Any:
    """The dossier, locked: issues for one dossier run one after the other, never on a stale Devis."""
    dossier = uow.conn.execute(_DOSSIER, {"n": dossier_number}).first()
    if dossier is None:
        audit.refuse(uow, actor, action, dossier_number, NotFound(f"dossier {dossier_number} does not exist"))
    return dossier


def issue_invoice(
    uow: UnitOfWork,
    actor: Actor,
    *,
    dossier_number: str,
    expected_version: int,
    idempotency_key: str,
    reason: str | None = None,
) -> dict[str, Any]:
    """Issue what the Devis still needs (see the module docstring): an invoice, or a credit note
    citing the latest invoice when the Devis went down (then `reason` is required). Returns the
    document's number, kind, date and total."""
    audit.require(uow.engine, actor, PERMISSION, ISSUE, dossier_number)
    if not isinstance(dossier_number, str) or not dossier_number.strip():
        audit.refuse(uow, actor, ISSUE, None, InvalidInput("dossier_number", "is required"))
    number = dossier_number.strip()
    try:
        cleaned = _reason(reason, required=False)
    except InvalidInput as error:
        audit.refuse(uow, actor, ISSUE, number, error)
    request = {"dossier_number": number, "expected_version": expected_version, "reason": cleaned}
    earlier = idempotency.claim(uow.conn, idempotency_key, ISSUE, request, actor.login)
    if earlier is not None:
        return earlier
    dossier = _locked_dossier(uow, actor, ISSUE, number)
    if dossier.version != expected_version:
        audit.refuse(uow, actor, ISSUE, number, StaleVersion(f"dossier {number}", expected_version, dossier.version))
    plan = preview(uow.conn, number)
    if plan.kind is None:
        error = InvalidInput("dossier_number", "everything in the Devis is already invoiced")
        audit.refuse(uow, actor, ISSUE, number, error)
    if plan.kind == CREDIT_NOTE and cleaned is None:
        audit.refuse(uow, actor, ISSUE, number, InvalidInput("reason", "is required for a credit note"))
    result = _issue(uow, actor, ISSUE, dossier, plan.kind, plan.lines, plan.cited_invoice, cleaned)
    idempotency.store(uow.conn, idempotency_key, result)
    uow.commit()
    return result


def issue_credit_note(
    uow: UnitOfWork, actor: Actor, *, invoice_number: str, reason: str, idempotency_key: str
) -> dict[str, Any]:
    """Cancel what is left of an invoice with a credit note citing it; returns the credit note."""
    audit.require(uow.engine, actor, PERMISSION, CREDIT)
    cited = invoice_number.strip() if isinstance(invoice_number, str) else ""
    head = uow.conn.execute(
        sa.text("SELECT kind, dossier_number FROM app.client_invoices WHERE invoice_number = :n"), {"n": cited}
    ).first()
    dossier_number = head.dossier_number if head is not None else None
    try:
        if not cited:
            raise InvalidInput("invoice_number", "is required")
        if head is None:
            raise NotFound(f"invoice {cited} does not exist")
        if head.kind != INVOICE:
            raise InvalidInput("invoice_number", f"{cited} is a credit note, not an invoice")
        cleaned = _reason(reason, required=True)
    except DomainError as error:
        audit.refuse(uow, actor, CREDIT, dossier_number, error)
    request = {"invoice_number": cited, "reason": cleaned}
    earlier = idempotency.claim(uow.conn, idempotency_key, CREDIT, request, actor.login)
    if earlier is not None:
        return earlier
    dossier = _locked_dossier(uow, actor, CREDIT, head.dossier_number)
    lines = _creditable(uow.conn, cited)
    if not lines or sum((line.amount for line in lines), Decimal("0.00")) <= 0:
        error = InvalidInput("invoice_number", f"{cited} is already credited")
        audit.refuse(uow, actor, CREDIT, dossier.dossier_number, error)
    result = _issue(uow, actor, CREDIT, dossier, CREDIT_NOTE, lines, cited, cleaned)
    idempotency.store(uow.conn, idempotency_key, result)
    uow.commit()
    return result


def list_invoices(conn: Connection, dossier_number: str) -> list[ClientInvoice]:
    """The dossier's invoices and credit notes in number order."""
    rows = conn.execute(
        sa.text(
            """SELECT i.invoice_number, i.kind, i.issue_date, i.cited_invoice, i.reason, i.currency, i.total_amount,
                      i.pdf_sha256, i.mail_id IS NOT NULL AS mailed, i.issued_at, i.issued_by,
                      CASE WHEN i.kind = 'invoice' THEN i.total_amount - coalesce(
                          (SELECT sum(c.total_amount) FROM app.client_invoices c
                           WHERE c.cited_invoice = i.invoice_number), 0) ELSE 0 END AS creditable
               FROM app.client_invoices i WHERE i.dossier_number = :n
               ORDER BY i.issued_at, i.invoice_number"""
        ),
        {"n": dossier_number},
    )
    return [ClientInvoice(**r._mapping) for r in rows]


def read_pdf(conn: Connection, invoice_number: str) -> bytes:
    """The PDF as issued; InvoiceCorrupted if its bytes no longer match the recorded SHA-256."""
    row = conn.execute(
        sa.text("SELECT pdf, pdf_sha256 FROM app.client_invoices WHERE invoice_number = :n"), {"n": invoice_number}
    ).first()
    if row is None:
        raise NotFound(f"invoice {invoice_number} does not exist")
    data = bytes(row.pdf)
    if hashlib.sha256(data).hexdigest() != row.pdf_sha256:
        raise InvoiceCorrupted(f"the PDF of {invoice_number} does not match its SHA-256")
    return data


def document_from_rows(conn: Connection, invoice_number: str) -> InvoiceDocument:
    """The document as stored, from which its Factur-X XML (and a PDF) can be produced again."""
    head = conn.execute(
        sa.text(
            """SELECT i.*, c.issue_date AS cited_date FROM app.client_invoices i
               LEFT JOIN app.client_invoices c ON c.invoice_number = i.cited_invoice
               WHERE i.invoice_number = :n"""
        ),
        {"n": invoice_number},
    ).first()
    if head is None:
        raise NotFound(f"invoice {invoice_number} does not exist")
    lines = conn.execute(
        sa.text(
            """SELECT line_number, label, quantity, unit_amount, price_line_id FROM app.client_invoice_lines
               WHERE invoice_number = :n ORDER BY line_number"""
        ),
        {"n": invoice_number},
    )
    return InvoiceDocument(
        number=head.invoice_number,
        kind=head.kind,
        issue_date=head.issue_date,
        dossier_number=head.dossier_number,
        currency=head.currency,
        language=head.language,
        seller=head.seller,
        buyer=head.buyer,
        lines=tuple(Line(r.line_number, r.label, r.quantity, r.unit_amount, r.price_line_id) for r in lines),
        cited_number=head.cited_invoice,
        cited_date=head.cited_date,
        reason=head.reason,
    )
