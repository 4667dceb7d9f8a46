"""Accountants' search lists at the service boundary, on a real PostgreSQL with dbt's billing views:
client invoices and credit notes, supplier invoices with each dossier's billing status, and saved
searches of those scopes (save, list, share, rename, delete) beside the agents' dossier searches."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import factories as f
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.dbt_runner import run_dbt
from backoffice.domain.errors import InvalidInput, NotFound, PermissionDenied
from backoffice.domain.permissions import Actor
from backoffice.queries import accounting_search
from backoffice.queries.accounting_search import (
    CLIENT_DOCUMENTS,
    SUPPLIER_INVOICES,
    DocumentCriteria,
    search_documents,
)
from backoffice.queries.criteria import SearchCriteria
from backoffice.services.client_invoices import issue_credit_note, issue_invoice
from backoffice.services.saved_searches import delete_search, list_searches, save_search, update_search
from backoffice.services.unit_of_work import UnitOfWork

ACCOUNTANT = Actor(
    "carla", "accountant", frozenset({"search_dossiers", "view_accounting", "share_searches", "issue_invoice"})
)
COLLEAGUE = Actor("chloe", "accountant", frozenset({"search_dossiers", "view_accounting"}))
AGENT = Actor("alice", "agent", frozenset({"search_dossiers"}))


def billing_views(database_url: str) -> None:
    """dbt's matching and billing status views (over app.*: current without another run), built if missing."""
    views = ["dossier_billing_status", "supplier_billing_status", "supplier_invoice_line_matches"]
    f.ensure_dbt_views(
        database_url,
        [f"marts.{v}" for v in views],
        ["build", "--select", *(f"+{v}" for v in views), "--resource-type", "seed", "--resource-type", "model"],
    )


def _supplier_invoice(db: Engine, supplier: str, number: str, kind: str, day: date, amount: str) -> None:
    with db.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.supplier_invoices (supplier_code, invoice_number, kind, invoice_date, currency,
                       sha256, source_file)
                   VALUES (:s, :n, :k, :d, 'EUR', repeat('0', 64), 'test')"""
            ),
            {"s": supplier, "n": number, "k": kind, "d": day},
        )
        conn.execute(
            sa.text(
                """INSERT INTO app.supplier_invoice_lines (supplier_code, invoice_number, line_number, reference,
                       amount_excl_tax, vat_rate, amount_incl_tax)
                   VALUES (:s, :n, 1, NULL, :a, 0, :a)"""
            ),
            {"s": supplier, "n": number, "a": Decimal(amount)},
        )


def _matched_by_hand(db: Engine, supplier: str, number: str, dossier: str) -> None:
    with db.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.reconciliation_decisions (supplier_code, invoice_number, line_number, decision,
                       dossier_number, decided_by, reason)
                   VALUES (:s, :n, 1, 'manual', :d, 'carla', 'test')"""
            ),
            {"s": supplier, "n": number, "d": dossier},
        )


@pytest.fixture
def books(db: Engine, database_url: str) -> Iterator[dict[str, Any]]:
    """Dupont: invoiced then credited, its hotel invoiced exactly; Martin: invoiced, its hotel over-invoiced."""
    billing_views(database_url)
    f.invoice_seller(db)
    dupont = f.dossier(db, client_first_name="Jean", client_last_name="Dupont")
    martin = f.dossier(db, client_first_name="Claire", client_last_name="Martin")
    numbers = {}
    for name, dossier in (("dupont", dupont), ("martin", martin)):
        with UnitOfWork(db) as uow:
            issued = issue_invoice(
                uow, ACCOUNTANT, dossier_number=dossier, expected_version=1, idempotency_key=uuid.uuid4().hex
            )
        numbers[f"{name}_invoice"] = issued["invoice_number"]
    with UnitOfWork(db) as uow:
        credited = issue_credit_note(
            uow,
            ACCOUNTANT,
            invoice_number=numbers["dupont_invoice"],
            reason="cancelled",
            idempotency_key=uuid.uuid4().hex,
        )
    numbers["credit"] = credited["invoice_number"]
    _supplier_invoice(db, "HOTEL01", "F-100", "invoice", date(2026, 3, 2), "800.00")
    _supplier_invoice(db, "HOTEL01", "F-101", "invoice", date(2026, 3, 9), "120.00")
    _supplier_invoice(db, "HOTEL01", "F-102", "invoice", date(2026, 3, 20), "5000.00")
    _matched_by_hand(db, "HOTEL01", "F-100", dupont)
    _matched_by_hand(db, "HOTEL01", "F-102", martin)
    yield {"dupont": dupont, "martin": martin, **numbers}


def search(db: Engine, scope: str, criteria: DocumentCriteria, sort: str = "document_date", descending: bool = True):
    with db.connect() as conn:
        return search_documents(conn, scope, criteria, sort, descending)


def test_client_documents_carry_their_dossiers_billing_status(db: Engine, books: dict[str, Any]) -> None:
    found = search(db, CLIENT_DOCUMENTS, DocumentCriteria(), sort="number", descending=False)
    assert sorted(r.number for r in found) == sorted(
        [books["dupont_invoice"], books["martin_invoice"], books["credit"]]
    )
    credit = next(r for r in found if r.kind == "credit_note")
    assert credit.amount == -Decimal("1000.00") and credit.party == "Dupont Jean"
    with db.connect() as conn:
        expected = dict(
            conn.execute(sa.text("SELECT dossier_number, supplier_status FROM marts.dossier_billing_status")).all()
        )
    assert {r.dossiers for r in found} == {
        ((books["dupont"], expected[books["dupont"]]),),
        ((books["martin"], expected[books["martin"]]),),
    }
    assert expected[books["martin"]] == "over_invoiced"
    only = search(db, CLIENT_DOCUMENTS, DocumentCriteria(kinds=("credit_note",), party="dupont"))
    assert [r.number for r in only] == [books["credit"]]
    over = search(db, CLIENT_DOCUMENTS, DocumentCriteria(billing_statuses=("over_invoiced",), amount_min="0"))
    assert [r.number for r in over] == [books["martin_invoice"]]


def test_supplier_invoices_show_each_matched_dossiers_status(db: Engine, books: dict[str, Any]) -> None:
    found = search(db, SUPPLIER_INVOICES, DocumentCriteria(party="hotel01"), sort="amount", descending=True)
    assert [(r.number, r.amount, r.dossiers) for r in found] == [
        ("F-102", Decimal("5000.00"), ((books["martin"], "over_invoiced"),)),
        ("F-100", Decimal("800.00"), ((books["dupont"], "invoiced"),)),
        ("F-101", Decimal("120.00"), ()),
    ]
    march = DocumentCriteria(date_from=date(2026, 3, 1), date_to=date(2026, 3, 10), number="f-10")
    assert [r.number for r in search(db, SUPPLIER_INVOICES, march, sort="number", descending=False)] == [
        "F-100",
        "F-101",
    ]
    assert [r.number for r in search(db, SUPPLIER_INVOICES, DocumentCriteria(dossier_number=books["dupont"]))] == [
        "F-100"
    ]


def _every_search(db: Engine) -> list[tuple]:
    """Each scope's documents and their dossiers' statuses, unfiltered and filtered by status."""
    found = []
    for scope in (CLIENT_DOCUMENTS, SUPPLIER_INVOICES):
        for criteria in (DocumentCriteria(), DocumentCriteria(billing_statuses=("over_invoiced", "invoiced"))):
            found.append([(r.number, r.dossiers) for r in search(db, scope, criteria, sort="number")])
    return found


def test_searches_read_the_builds_copies_and_the_views_for_what_changed_since(
    db: Engine, books: dict[str, Any], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a build the searches read its copies (intermediate.int_search__*), and the live views
    for the dossiers and invoices the change log names since: what they show is the views'."""
    copies = ["+int_search__supplier_status", "+int_search__dossier_status", "+int_search__invoice_summary"]
    copies.append("int_search__pending_dossiers")
    # The applied marker waits for the journal, which reads the chart of accounts: seeds with the models.
    kinds = ["--resource-type", "seed", "--resource-type", "model"]
    run_dbt(["build", "--select", *copies, "+int_mart_changes_applied", *kinds], database_url=database_url)
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.mart_changes")).scalar_one() == 0
        assert accounting_search.reads_build_copies(conn)

    def through_the_views() -> list[tuple]:
        with monkeypatch.context() as m:
            m.setattr(accounting_search, "LIVE_LIMIT", -1)  # more changed than the limit: the views whole
            return _every_search(db)

    assert _every_search(db) == through_the_views()
    # Since the build: F-101 matched by hand to Dupont (over-invoiced now), Martin's invoice F-102
    # credited in full, a new dossier's client invoice.
    _matched_by_hand(db, "HOTEL01", "F-101", books["dupont"])
    _supplier_invoice(db, "HOTEL01", "A-102", "credit_note", date(2026, 3, 21), "5000.00")
    _matched_by_hand(db, "HOTEL01", "A-102", books["martin"])
    newcomer = f.dossier(db, client_first_name="Anne", client_last_name="Leroy")
    with UnitOfWork(db) as uow:
        issue_invoice(uow, ACCOUNTANT, dossier_number=newcomer, expected_version=1, idempotency_key=uuid.uuid4().hex)
    with db.connect() as conn:
        assert accounting_search.reads_build_copies(conn)
    now = _every_search(db)
    assert now == through_the_views()
    # The changes show: the copies alone would say otherwise.
    supplier_invoices = dict(now[2])
    assert [d for d, _ in supplier_invoices["F-101"]] == [books["dupont"]]
    assert supplier_invoices["F-102"] != ((books["martin"], "over_invoiced"),)
    assert newcomer in {d for _, dossiers in now[0] for d, _ in dossiers}


def test_an_invoice_naming_many_dossiers_lists_the_first_and_counts_them_all(
    db: Engine, books: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A monthly statement names hundreds of dossiers: a row lists the first SHOWN_DOSSIERS by
    number and counts every one by billing status, whatever the page is cut on."""
    monkeypatch.setattr(accounting_search, "SHOWN_DOSSIERS", 1)
    with db.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.supplier_invoice_lines (supplier_code, invoice_number, line_number, reference,
                       amount_excl_tax, vat_rate, amount_incl_tax)
                   VALUES ('HOTEL01', 'F-100', 2, NULL, 10, 0, 10)"""
            )
        )
        conn.execute(
            sa.text(
                """INSERT INTO app.reconciliation_decisions (supplier_code, invoice_number, line_number, decision,
                       dossier_number, decided_by, reason)
                   VALUES ('HOTEL01', 'F-100', 2, 'manual', :d, 'carla', 'test')"""
            ),
            {"d": books["martin"]},
        )
    page = DocumentCriteria(party="hotel01")  # the page cut on the invoices
    on_dossiers = DocumentCriteria(party="hotel01", billing_statuses=("invoiced", "over_invoiced"))
    for criteria in (page, on_dossiers):
        (row,) = [r for r in search(db, SUPPLIER_INVOICES, criteria) if r.number == "F-100"]
        first = min(books["dupont"], books["martin"])
        assert [d for d, _ in row.dossiers] == [first], criteria
        assert row.dossier_count == 2
        assert sum(n for _, n in row.status_counts) == 2 and {s for s, _ in row.status_counts} <= {
            "invoiced",
            "over_invoiced",
        }


@pytest.mark.parametrize(
    ("criteria", "field"),
    [
        (DocumentCriteria(kinds=("receipt",)), "kinds"),
        (DocumentCriteria(billing_statuses=("paid",)), "billing_statuses"),
        (DocumentCriteria(date_from=date(2026, 3, 2), date_to=date(2026, 3, 1)), "date_to"),
        (DocumentCriteria(amount_min="ten"), "amount_min"),
    ],
)
def test_bad_criteria_are_refused_by_field(db: Engine, books: dict[str, Any], criteria: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        search(db, SUPPLIER_INVOICES, criteria)
    assert refused.value.field == field


def _save(db: Engine, who: Actor, name: str, scope: str, **kw: Any):
    with UnitOfWork(db) as uow:
        return save_search(
            uow,
            who,
            name,
            kw.pop("criteria", DocumentCriteria(kinds=("invoice",))),
            idempotency_key=uuid.uuid4().hex,
            scope=scope,
            sort=kw.pop("sort", "amount"),
            **kw,
        )


def _listed(db: Engine, who: Actor, scope: str) -> list[tuple[str, str | None]]:
    with UnitOfWork(db) as uow:
        return [(s.name, s.owner) for s in list_searches(uow, who, scope=scope)]


def test_search_lists_per_scope_save_share_rename_delete(db: Engine) -> None:
    for login, role in (("carla", "accountant"), ("chloe", "accountant")):
        f.user(db, login, role)
    mine = _save(db, ACCOUNTANT, "À relancer", SUPPLIER_INVOICES, shared_with_role="accountant")
    assert mine.scope == SUPPLIER_INVOICES and mine.criteria == DocumentCriteria(kinds=("invoice",))
    # The same name may exist in another scope, not twice in one.
    _save(db, ACCOUNTANT, "À relancer", CLIENT_DOCUMENTS)
    with pytest.raises(InvalidInput, match="already have a search named"):
        _save(db, ACCOUNTANT, "À relancer", SUPPLIER_INVOICES)
    with UnitOfWork(db) as uow:
        save_search(uow, ACCOUNTANT, "Départs", SearchCriteria(), idempotency_key=uuid.uuid4().hex)
    assert _listed(db, COLLEAGUE, SUPPLIER_INVOICES) == [("À relancer", "carla")]
    assert _listed(db, COLLEAGUE, CLIENT_DOCUMENTS) == []
    with UnitOfWork(db) as uow:
        dossier_lists = [s.name for s in list_searches(uow, ACCOUNTANT) if not s.builtin]
    assert dossier_lists == ["Départs"]

    with UnitOfWork(db) as uow:
        renamed = update_search(
            uow,
            ACCOUNTANT,
            mine.id,
            name="Surfacturées",
            criteria=DocumentCriteria(billing_statuses=("over_invoiced",)),
            sort="document_date",
            descending=True,
            shared_with_role=None,
            expected_version=mine.version,
            idempotency_key=uuid.uuid4().hex,
            scope=SUPPLIER_INVOICES,
        )
    assert (renamed.name, renamed.version, renamed.shared_with_role) == ("Surfacturées", 2, None)
    assert _listed(db, COLLEAGUE, SUPPLIER_INVOICES) == []
    # A list of one scope is not reachable through another, nor someone else's at all.
    with UnitOfWork(db) as uow, pytest.raises(NotFound):
        delete_search(uow, ACCOUNTANT, mine.id, idempotency_key=uuid.uuid4().hex, scope=CLIENT_DOCUMENTS)
    with UnitOfWork(db) as uow, pytest.raises(NotFound):
        delete_search(uow, COLLEAGUE, mine.id, idempotency_key=uuid.uuid4().hex, scope=SUPPLIER_INVOICES)
    with UnitOfWork(db) as uow:
        delete_search(uow, ACCOUNTANT, mine.id, idempotency_key=uuid.uuid4().hex, scope=SUPPLIER_INVOICES)
    assert _listed(db, ACCOUNTANT, SUPPLIER_INVOICES) == []
    with db.connect() as conn:
        actions = conn.execute(
            sa.text("SELECT action, outcome FROM audit.events WHERE actor IN ('carla', 'chloe') ORDER BY id")
        ).all()
    assert [tuple(a) for a in actions] == [
        ("save_search", "done"),
        ("save_search", "done"),
        ("save_search", "refused"),
        ("save_search", "done"),
        ("update_search", "done"),
        ("delete_search", "refused"),
        ("delete_search", "refused"),
        ("delete_search", "done"),
    ]


def test_accounting_lists_need_view_accounting_and_a_known_scope(db: Engine) -> None:
    with UnitOfWork(db) as uow, pytest.raises(PermissionDenied):
        list_searches(uow, AGENT, scope=CLIENT_DOCUMENTS)
    with pytest.raises(PermissionDenied):
        _save(db, AGENT, "Mine", SUPPLIER_INVOICES)
    with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as refused:
        list_searches(uow, ACCOUNTANT, scope="payments")
    assert refused.value.field == "scope"
    f.user(db, "carla", "accountant")
    with pytest.raises(InvalidInput) as wrong:
        _save(db, ACCOUNTANT, "Dossier criteria", SUPPLIER_INVOICES, criteria=SearchCriteria())
    assert wrong.value.field == "criteria"
    with db.connect() as conn:
        refusals = conn.execute(
            sa.text("SELECT actor, action FROM audit.events WHERE outcome = 'refused' ORDER BY id")
        ).all()
    assert [tuple(r) for r in refusals] == [
        ("alice", "list_searches"),
        ("alice", "save_search"),
        ("carla", "list_searches"),
        ("carla", "save_search"),
    ]
