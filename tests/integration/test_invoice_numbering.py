"""Invoice numbers under concurrency: 20 issues at once, some rolled back, give 1..n without a gap."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import factories as f
import pytest
import sqlalchemy as sa
from test_client_invoices import actor

from backoffice.domain.errors import InvalidInput
from backoffice.domain.permissions import Actor
from backoffice.invoicing import numbering
from backoffice.services.client_invoices import issue_invoice
from backoffice.services.unit_of_work import UnitOfWork

WORKERS = 20
# These dossiers' client address is refused by the outbox, the last step of an issue: their
# transaction rolls back after it took a number, which must be given back.
BROKEN = {3, 7, 8, 15}


def test_twenty_concurrent_issues_with_rollbacks_leave_no_gap_and_no_duplicate(db: sa.Engine) -> None:
    f.invoice_seller(db)
    compta = actor(db, "compta", "accountant")
    dossiers = [
        f.dossier(db, brand="Soleil", client_email="broken@@example.org" if i in BROKEN else f"c{i}@example.org")
        for i in range(WORKERS)
    ]
    f.dossier(db, brand="Neige")  # another brand has a series of its own
    start = threading.Barrier(WORKERS)

    def work(number: str) -> str | None:
        start.wait()
        try:
            with UnitOfWork(db) as uow:
                return issue_invoice(
                    uow, compta, dossier_number=number, expected_version=1, idempotency_key=uuid.uuid4().hex
                )["invoice_number"]
        except InvalidInput as error:
            assert error.field == "to_address"
            return None

    with ThreadPoolExecutor(WORKERS) as pool:
        issued = [n for n in pool.map(work, dossiers) if n is not None]

    assert len(issued) == WORKERS - len(BROKEN)
    with db.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT invoice_number, seq, issue_date FROM app.client_invoices WHERE brand = 'Soleil' ORDER BY seq"
            )
        ).all()
        counter = conn.execute(
            sa.text("SELECT last_number FROM app.invoice_counters WHERE brand = 'Soleil' AND series = 'FA'")
        ).scalar_one()
    assert [r.seq for r in rows] == list(range(1, len(issued) + 1))  # continuous: no gap, no duplicate
    assert counter == len(issued)
    assert sorted(issued) == [r.invoice_number for r in rows]
    assert [r.issue_date for r in rows] == sorted(r.issue_date for r in rows)  # chronological
    neige = issue(db, compta, f.dossier(db, brand="Neige"))
    assert neige.startswith("NEIGE-FA-") and neige.endswith("-000001")


def issue(db: sa.Engine, who: Actor, number: str) -> str:
    with UnitOfWork(db) as uow:
        return issue_invoice(uow, who, dossier_number=number, expected_version=1, idempotency_key=uuid.uuid4().hex)[
            "invoice_number"
        ]


def test_a_rolled_back_number_is_given_to_the_next_issue(db: sa.Engine) -> None:
    with db.connect() as conn, conn.begin() as transaction:
        assert numbering.take(conn, "Soleil", numbering.INVOICE).seq == 1
        transaction.rollback()
    with db.connect() as conn, conn.begin():
        taken = numbering.take(conn, "Soleil", numbering.INVOICE)
        second = numbering.take(conn, "Soleil", numbering.INVOICE)
    assert (taken.seq, second.seq) == (1, 2)
    assert second.text == f"SOLEIL-FA-{second.year}-000002" and second.issue_date >= taken.issue_date


def test_a_series_is_not_a_sequence(db: sa.Engine) -> None:
    with db.connect() as conn:
        sequences = conn.execute(
            sa.text("SELECT count(*) FROM pg_sequences WHERE sequencename LIKE '%invoice%'")
        ).scalar_one()
    assert sequences == 0
    with pytest.raises(ValueError):
        numbering.take(db.connect(), "Soleil", "XX")
