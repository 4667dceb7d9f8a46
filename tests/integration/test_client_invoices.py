"""Client invoices and credit notes at the service boundary, against the real PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import factories as f
import facturx
import pypdf
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from test_mail_outbox import Server, smtp  # noqa: F401  (the fixture)

from backoffice.domain.errors import IdempotencyConflict, InvalidInput, NotFound, PermissionDenied, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.invoicing import facturx_xml
from backoffice.mail.sender import deliver_due
from backoffice.services.client_invoices import (
    document_from_rows,
    issue_credit_note,
    issue_invoice,
    list_invoices,
    preview,
    read_pdf,
)
from backoffice.services.unit_of_work import UnitOfWork

ROOM = {"service_id": "S1", "quantity": 2, "unit_sale_amount": "500.00", "unit_purchase_amount": "400.00"}
TRANSFER = {"service_id": "S1", "line_id": "L2", "label": "Transfer", "unit_sale_amount": "80.00"}


def actor(engine: sa.Engine, login: str, role: str) -> Actor:
    """An actor with the role's permissions as the database maps them (no account: hashing a
    password costs a second per test and proves nothing here)."""
    with engine.connect() as conn:
        permissions = conn.execute(
            sa.text("SELECT permission FROM app.role_permissions WHERE role = :r"), {"r": role}
        ).scalars()
        return Actor(login, role, frozenset(permissions))


def issue(db: sa.Engine, who: Actor, number: str, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "dossier_number": number,
        "expected_version": 1,
        "idempotency_key": uuid.uuid4().hex,
        **overrides,
    }
    with UnitOfWork(db) as uow:
        return issue_invoice(uow, who, **arguments)


def credit(db: sa.Engine, who: Actor, invoice: str, reason: str = "client cancelled", **kw: Any) -> dict[str, Any]:
    with UnitOfWork(db) as uow:
        return issue_credit_note(
            uow, who, invoice_number=invoice, reason=reason, idempotency_key=kw.get("key", uuid.uuid4().hex)
        )


def events(db: sa.Engine, action: str) -> list[sa.Row]:
    with db.connect() as conn:
        return list(
            conn.execute(
                sa.text("SELECT actor, outcome, detail, after FROM audit.events WHERE action = :a ORDER BY id"),
                {"a": action},
            )
        )


@pytest.fixture
def compta(db: sa.Engine) -> Actor:
    f.invoice_seller(db)
    return actor(db, "compta", "accountant")


def test_first_invoice_holds_the_whole_devis_with_a_valid_facturx_pdf(db: sa.Engine, compta: Actor) -> None:
    number = f.dossier(db, lines=[ROOM, TRANSFER, {**TRANSFER, "line_id": "L3", "unit_sale_amount": "-30.00"}])
    result = issue(db, compta, number)
    assert result["kind"] == "invoice"
    assert result["invoice_number"] == f"SOLEIL-FA-{datetime.now(UTC).year}-000001"
    assert Decimal(result["total"]) == Decimal("1050.00")
    with db.connect() as conn:
        pdf = read_pdf(conn, result["invoice_number"])
        stored = conn.execute(sa.text("SELECT * FROM app.client_invoices")).one()
        document = document_from_rows(conn, result["invoice_number"])
        [listed] = list_invoices(conn, number)
    assert hashlib.sha256(pdf).hexdigest() == stored.pdf_sha256 == result["pdf_sha256"]
    xmp = pypdf.PdfReader(io.BytesIO(pdf)).trailer["/Root"]["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in xmp and b"<pdfaid:conformance>B</pdfaid:conformance>" in xmp
    name, embedded = facturx.get_xml_from_pdf(pdf, check_xsd=False)
    assert name == "factur-x.xml"
    assert facturx.xml_check_xsd(embedded, flavor="factur-x", level="en16931")
    # The XML is rebuilt identically from the stored rows.
    assert embedded == facturx_xml.build(document)
    assert hashlib.sha256(embedded).hexdigest() == stored.xml_sha256
    text = embedded.decode()
    assert "<ram:CategoryCode>E</ram:CategoryCode>" in text
    assert "<ram:ExemptionReasonCode>VATEX-EU-D</ram:ExemptionReasonCode>" in text
    assert "Régime particulier – Agences de voyages" in text
    assert '<ram:TaxTotalAmount currencyID="EUR">0.00</ram:TaxTotalAmount>' in text
    assert "<ram:GrandTotalAmount>1050.00</ram:GrandTotalAmount>" in text
    # The discount line has a positive price and a negative quantity (EN 16931 BR-27).
    assert '<ram:BilledQuantity unitCode="C62">-1</ram:BilledQuantity>' in text
    assert (listed.total_amount, listed.mailed, listed.creditable) == (Decimal("1050.00"), True, Decimal("1050.00"))
    [done] = events(db, "issue_invoice")
    assert (done.actor, done.outcome, done.after["invoice_number"]) == ("compta", "done", result["invoice_number"])


def test_the_invoice_is_mailed_with_its_pdf_in_the_clients_language(
    db: sa.Engine,
    compta: Actor,
    smtp: Server,  # noqa: F811
) -> None:
    number = f.dossier(db, client_language="en", client_email="jane@example.org", client_first_name="Jane")
    result = issue(db, compta, number)
    smtp.start()
    report = deliver_due(db, "127.0.0.1", smtp.port, now=datetime.now(UTC) + timedelta(minutes=1))
    assert report.sent == 1
    [message] = smtp.inbox.messages
    assert message["To"] == "jane@example.org"
    assert message["Subject"] == f"Your invoice {result['invoice_number']} (dossier {number})"
    assert "Hello M. Jane Client" in message.get_body(("plain",)).get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == f"{result['invoice_number']}.pdf"
    with db.connect() as conn:
        assert attachment.get_content() == read_pdf(conn, result["invoice_number"])


def test_a_changed_devis_gives_a_complementary_invoice_then_a_credit_note(db: sa.Engine, compta: Actor) -> None:
    number = f.dossier(db, lines=[ROOM])
    first = issue(db, compta, number)
    with pytest.raises(InvalidInput, match="already invoiced"):
        issue(db, compta, number)
    with db.begin() as conn:  # a regulation adds a line
        conn.execute(
            sa.text(
                """INSERT INTO app.price_lines (dossier_number, service_id, line_id, origin, label, quantity,
                       unit_sale_amount, sale_currency, unit_purchase_amount, purchase_currency, vat_rate)
                   VALUES (:n, 'S1', 'R1', 'regulation', 'Fuel surcharge', 2, 25.00, 'EUR', 0, 'EUR', 0)"""
            ),
            {"n": number},
        )
    complement = issue(db, compta, number)
    assert (complement["kind"], Decimal(complement["total"])) == ("invoice", Decimal("50.00"))
    with db.begin() as conn:  # the hotel is cancelled: its lines no longer count
        conn.execute(sa.text("UPDATE app.services SET status = 'cancelled' WHERE dossier_number = :n"), {"n": number})
    with db.connect() as conn:
        plan = preview(conn, number)
    assert (plan.kind, plan.total, plan.cited_invoice) == (
        "credit_note",
        Decimal("1050.00"),
        complement["invoice_number"],
    )
    with pytest.raises(InvalidInput, match="reason: is required"):
        issue(db, compta, number)
    note = issue(db, compta, number, reason="hotel cancelled")
    assert (note["kind"], note["cited_invoice"]) == ("credit_note", complement["invoice_number"])
    assert note["invoice_number"].startswith("SOLEIL-AV-")
    with db.connect() as conn:
        assert preview(conn, number).kind is None
        kinds = [(i.kind, i.total_amount) for i in list_invoices(conn, number)]
    assert kinds == [
        ("invoice", Decimal("1000.00")),
        ("invoice", Decimal("50.00")),
        ("credit_note", Decimal("1050.00")),
    ]
    assert first["invoice_number"].endswith("-000001") and complement["invoice_number"].endswith("-000002")


def test_a_credit_note_cancels_an_invoice_once_and_the_devis_can_be_invoiced_again(
    db: sa.Engine, compta: Actor
) -> None:
    number = f.dossier(db)
    invoice = issue(db, compta, number)["invoice_number"]
    key = uuid.uuid4().hex
    note = credit(db, compta, invoice, key=key)
    assert credit(db, compta, invoice, key=key) == note  # a replayed form returns the first result
    with pytest.raises(IdempotencyConflict):
        credit(db, compta, invoice, reason="another reason", key=key)
    assert (note["kind"], note["cited_invoice"], Decimal(note["total"])) == ("credit_note", invoice, Decimal("1000.00"))
    with pytest.raises(InvalidInput, match="already credited"):
        credit(db, compta, invoice)
    with pytest.raises(InvalidInput, match="is a credit note"):
        credit(db, compta, note["invoice_number"])
    with pytest.raises(InvalidInput, match="reason: is required"):
        credit(db, compta, invoice, reason="  ")
    with pytest.raises(NotFound):
        credit(db, compta, "SOLEIL-FA-1999-000009")
    again = issue(db, compta, number)  # cancelled, so the Devis is to invoice again
    assert (again["kind"], Decimal(again["total"])) == ("invoice", Decimal("1000.00"))
    with db.connect() as conn:
        pdf = read_pdf(conn, note["invoice_number"])
    _, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert b"<ram:TypeCode>381</ram:TypeCode>" in xml and f"<ram:IssuerAssignedID>{invoice}<".encode() in xml
    refused = [e for e in events(db, "issue_credit_note") if e.outcome == "refused"]
    assert len(refused) == 4  # the conflicting replay is refused by the idempotency key itself


def test_an_issued_invoice_cannot_be_changed_or_deleted_in_the_database(db: sa.Engine, compta: Actor) -> None:
    number = f.dossier(db)
    invoice = issue(db, compta, number)["invoice_number"]
    statements = [
        "UPDATE app.client_invoices SET total_amount = 1 WHERE invoice_number = :n",
        "UPDATE app.client_invoices SET pdf = '\\x00' WHERE invoice_number = :n",
        "DELETE FROM app.client_invoices WHERE invoice_number = :n",
        "UPDATE app.client_invoice_lines SET unit_amount = 1 WHERE invoice_number = :n",
        "DELETE FROM app.client_invoice_lines WHERE invoice_number = :n",
        "UPDATE app.invoice_counters SET last_number = last_number - 1",
        "DELETE FROM app.invoice_counters",
    ]
    for statement in statements:
        with pytest.raises(DBAPIError, match=r"refused|only move forward"), db.begin() as conn:
            conn.execute(sa.text(statement), {"n": invoice})
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT total_amount FROM app.client_invoices")).scalar() == Decimal("1000.00")


@pytest.mark.parametrize("role", ["agent", "senior_agent"])
def test_roles_without_issue_invoice_are_refused_and_audited(db: sa.Engine, compta: Actor, role: str) -> None:
    number = f.dossier(db)
    who = actor(db, f"user-{role.replace('_', '-')}", role)
    with pytest.raises(PermissionDenied):
        issue(db, who, number)
    invoice = issue(db, compta, number)["invoice_number"]
    with pytest.raises(PermissionDenied):
        credit(db, who, invoice)
    refused = [
        e for action in ("issue_invoice", "issue_credit_note") for e in events(db, action) if e.outcome == "refused"
    ]
    assert [e.actor for e in refused] == [who.login, who.login]
    assert all("issue_invoice" in e.detail for e in refused)
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.client_invoices")).scalar() == 1


def test_admin_may_issue(db: sa.Engine, compta: Actor) -> None:
    assert issue(db, actor(db, "root", "admin"), f.dossier(db))["kind"] == "invoice"


def test_stale_form_unknown_dossier_and_missing_seller_are_refused(db: sa.Engine, compta: Actor) -> None:
    number = f.dossier(db)
    with pytest.raises(StaleVersion):
        issue(db, compta, number, expected_version=0)
    with pytest.raises(NotFound):
        issue(db, compta, "BK-NOPE")
    with db.begin() as conn:
        conn.execute(sa.text("TRUNCATE app.invoice_sellers"))
    with pytest.raises(NotFound, match="no invoice seller"):
        issue(db, compta, number)
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.client_invoices")).scalar() == 0
        # Every refusal rolled its number back: nothing was taken.
        assert conn.execute(sa.text("SELECT count(*) FROM app.invoice_counters")).scalar() == 0
    assert [e.outcome for e in events(db, "issue_invoice")] == ["refused"] * 3


def test_a_client_without_email_is_invoiced_without_a_mail(db: sa.Engine, compta: Actor) -> None:
    result = issue(db, compta, f.dossier(db, client_email=None))
    assert result["mail_id"] is None
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.outbox_mails")).scalar() == 0
