"""The dossier page in one round trip: every section as the services' own list readers give it.

`dossier_view()` sends its fourteen statements in one psycopg pipeline; the sections the services
also list (documents, invoices, refunds, modifications, travel-book sendings) are built from the
same statements, and these tests hold them equal on a dossier that has every one of them, written
through the services. The round trips are counted on the wire with libpq's protocol trace.
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa

from backoffice.documents.storage import LocalStorage
from backoffice.domain.permissions import Actor
from backoffice.queries.dossier import dossier_view
from backoffice.services.client_invoices import issue_credit_note, issue_invoice, list_invoices
from backoffice.services.documents import list_documents, replace_document, upload_document
from backoffice.services.modifications import list_modifications, record_modification
from backoffice.services.refunds import list_refunds, request_refund
from backoffice.services.travel_book import list_sendings, set_travel_book
from backoffice.services.unit_of_work import UnitOfWork

PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
PDF_2 = b"%PDF-1.7\n% the corrected ticket\n%%EOF\n"


def everyone(db: sa.Engine) -> Actor:
    """An agent holding every permission the database maps to a role (no account needed)."""
    with db.connect() as conn:
        permissions = conn.execute(sa.text("SELECT DISTINCT permission FROM app.role_permissions")).scalars()
        return Actor("alice", "senior_agent", frozenset(permissions))


def version(db: sa.Engine, number: str) -> int:
    with db.connect() as conn:
        query = sa.text("SELECT version FROM app.dossiers WHERE dossier_number = :n")
        return conn.execute(query, {"n": number}).scalar_one()


def key() -> str:
    return uuid.uuid4().hex


def full_dossier(db: sa.Engine, storage: LocalStorage) -> str:
    """A dossier with two versions of a document, a sent travel book, an invoice and its credit
    note, a refund request and a pending cancellation with a fee: every section filled."""
    who = everyone(db)
    f.invoice_seller(db)
    number = f.dossier(
        db,
        services=[{"service_id": "S1", "label": "Hotel Miramar"}],
        lines=[{"line_id": "L1", "service_id": "S1", "quantity": 2, "unit_sale_amount": "500.00"}],
        sale_total="1000.00",
    )
    paid = f.payment(db, number, "900.00")
    with UnitOfWork(db) as uow:
        first = upload_document(
            uow, who, number, "Ticket", "ticket", "ticket.pdf", PDF, idempotency_key=key(), storage=storage
        )
    with UnitOfWork(db) as uow:
        replace_document(
            uow,
            who,
            first.document_id,
            "ticket-2.pdf",
            PDF_2,
            expected_version=1,
            idempotency_key=key(),
            storage=storage,
        )
    with UnitOfWork(db) as uow:
        set_travel_book(
            uow,
            who,
            dossier_number=number,
            complete=True,
            mode="automatic",
            expected_version=version(db, number),
            idempotency_key=key(),
            storage=storage,
        )
    with UnitOfWork(db) as uow:
        invoice = issue_invoice(
            uow, who, dossier_number=number, expected_version=version(db, number), idempotency_key=key()
        )
    with UnitOfWork(db) as uow:
        issue_credit_note(
            uow, who, invoice_number=invoice["invoice_number"], reason="client cancelled", idempotency_key=key()
        )
    with UnitOfWork(db) as uow:
        request_refund(
            uow,
            who,
            dossier_number=number,
            payment_id=paid,
            amount="100.00",
            reason="hotel closed",
            expected_version=version(db, number),
            idempotency_key=key(),
        )
    fee = {"service_id": "S1", "label": "Cancellation fee", "quantity": 1, "unit_sale_amount": "150.00"}
    with UnitOfWork(db) as uow:
        record_modification(
            uow,
            who,
            dossier_number=number,
            kind="cancellation",
            description="The client cancels",
            fee_lines=[{**fee, "unit_purchase_amount": "0.00", "vat_rate": "0.00"}],
            expected_version=version(db, number),
            idempotency_key=key(),
        )
    return number


def test_every_section_is_what_the_services_list(db: sa.Engine, price_lines_mart: None, tmp_path: Path) -> None:
    number = full_dossier(db, LocalStorage(tmp_path / "documents"))
    other = f.dossier(db)  # a second dossier, so a section reading more than its own would show it
    with db.connect() as conn:
        view = dossier_view(conn, number)
        assert view.documents == tuple(list_documents(conn, number))
        assert view.client_invoices == tuple(list_invoices(conn, number))
        assert view.refunds == tuple(list_refunds(conn, number))
        assert view.modifications == tuple(list_modifications(conn, number))
        assert view.travel_book_sendings == tuple(list_sendings(conn, number))
        empty = dossier_view(conn, other)
    # every section is really filled, so the comparisons above compared something
    assert [len(d.versions) for d in view.documents] == [2]
    assert [i.kind for i in view.client_invoices] == ["invoice", "credit_note"]
    assert [r.amount for r in view.refunds] == [pytest.approx(100)]
    (request,) = view.modifications
    assert request.state == "pending" and request.refund_estimate is not None and len(request.lines) == 1
    (sending,) = view.travel_book_sendings
    assert [d.version for d in sending.documents] == [2]
    assert view.travel_book_complete and view.summary.dossier_number == number
    assert (empty.documents, empty.client_invoices, empty.refunds, empty.modifications) == ((), (), (), ())
    assert empty.travel_book_sendings == () and empty.summary.dossier_number == other


def test_the_whole_page_is_one_round_trip(db: sa.Engine, price_lines_mart: None, tmp_path: Path) -> None:
    due = [{"due_date": date(2026, 1, 5), "amount": "100.00"}]
    number = f.dossier(db, lines=[{"line_id": "L1", "service_id": "S1"}], schedule=due)
    trace = tmp_path / "libpq.trace"
    with db.connect() as conn:
        conn.execute(sa.text("SELECT 1"))  # the transaction is open: the page adds no BEGIN of its own
        raw = conn.connection.driver_connection
        with trace.open("w") as out:
            raw.pgconn.trace(out.fileno())
            try:
                view = dossier_view(conn, number)
            finally:
                raw.pgconn.untrace()
        conn.rollback()
    # "<time>\tF|B\t<length>\t<message>...": what the client (F) sent and the server (B) answered.
    messages = [line.split("\t")[1:4:2] for line in trace.read_text().splitlines()]
    # Fourteen statements sent (Parse, Bind, Describe, Execute each) and one Sync: the client
    # waited for the server once, for all the results at the same time.
    assert messages.count(["F", "Execute"]) == 14
    assert messages.count(["F", "Sync"]) == 1, messages
    assert view.summary.dossier_number == number and len(view.devis.lines) == 1 and len(view.schedule) == 1


def test_an_unknown_dossier_is_not_found_and_the_connection_stays_usable(db: sa.Engine) -> None:
    from backoffice.domain.errors import NotFound

    with db.connect() as conn:
        with pytest.raises(NotFound):
            dossier_view(conn, "BK-0000-000000")
        assert conn.in_transaction()  # begun, as SQLAlchemy would on a first statement
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
        conn.rollback()


def test_a_database_error_comes_out_as_sqlalchemys(db: sa.Engine) -> None:
    number = f.dossier(db)
    with db.connect() as conn:
        conn.execute(sa.text("SET LOCAL statement_timeout = 1"))
        conn.execute(sa.text("SET LOCAL lock_timeout = 1"))
        # A lock held by another transaction makes one section wait past the timeout.
        with db.connect() as other:
            other.execute(sa.text("LOCK TABLE app.refunds IN ACCESS EXCLUSIVE MODE"))
            with pytest.raises(sa.exc.OperationalError):
                dossier_view(conn, number)
            other.rollback()
        conn.rollback()
        assert dossier_view(conn, number).summary.dossier_number == number
