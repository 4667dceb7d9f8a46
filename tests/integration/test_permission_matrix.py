"""Every role x every service function: refused (PermissionDenied, and a 'refused' audit event)
exactly when the role's permissions, as app.role_permissions holds them, lack what the function needs.

Each service is one entry of SERVICES: what it needs, and a call with arguments that are harmless
past the permission check (an unknown dossier, a replay-free new name...). An allowed call may
still be refused for another reason (NotFound, InvalidInput...): what matters here is that it got
past the permission check. `test_every_service_function_has_an_entry` finds the service functions
by reading the packages, so a new one without an entry fails the suite.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import factories as f
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import backoffice.mail
import backoffice.services
from backoffice.documents.storage import LocalStorage
from backoffice.domain.errors import DomainError, PermissionDenied
from backoffice.domain.permissions import ROLES, Actor
from backoffice.export.delivery import LocalDirectory
from backoffice.mail import outbox, sender
from backoffice.queries import reconciliation as workbench
from backoffice.queries.accounting_search import DocumentCriteria
from backoffice.queries.criteria import SearchCriteria
from backoffice.services import (
    admin,
    balances,
    client_invoices,
    documents,
    exports,
    modifications,
    payments,
    periods,
    price_adjustments,
    reconciliation,
    refunds,
    regulations,
    saved_searches,
    supplier_contacts,
    supplier_invoice_registration,
    travel_book,
    users,
    write_offs,
)
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor

MISSING_DOSSIER = "BK-1999-999999"
MISSING_LINE = {"supplier_code": "NOSUPPLIER", "invoice_number": "F-MISSING", "line_number": 1}
# Plumbing that takes an actor without being an action of its own.
NOT_SERVICES = {
    "backoffice.services.users.current": "reads the caller as stored; checks nothing",
    "backoffice.services.payments.bump_version": "the version guard the payment services share",
    "backoffice.services.periods.ensure_open": "the closed-period guard of the posting services",
}


@dataclass(frozen=True)
class World:
    engine: Engine
    dossier: str
    storage: LocalStorage

    def version(self, login: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT version FROM app.users WHERE login = :l"), {"l": login}).scalar_one()


def _key() -> str:
    return uuid.uuid4().hex


Call = Callable[[UnitOfWork, Actor, World], Any]


@dataclass(frozen=True)
class Service:
    """`needs`: every inner tuple must have one permission the actor holds (() = anyone)."""

    function: str
    needs: tuple[tuple[str, ...], ...]
    call: Call
    case: str = ""

    @property
    def id(self) -> str:
        return f"{self.function}{'[' + self.case + ']' if self.case else ''}"

    def allowed(self, permissions: set[str]) -> bool:
        return all(permissions & set(clause) for clause in self.needs)


def needs(*permissions: str) -> tuple[tuple[str, ...], ...]:
    return tuple((p,) for p in permissions)


def _svc(function: str, required: tuple[tuple[str, ...], ...], call: Call, case: str = "") -> Service:
    return Service(function, required, call, case)


REGULATION = {
    "supplier_code": "HOTEL01",
    "service_kinds": ["hotel"],
    "mode": "amount",
    "purchase_value": "10.00",
    "reason": "matrix",
}

SERVICES = [
    # A period that is not one is refused past the permission check, before any write.
    _svc(
        "backoffice.services.periods.close_period",
        needs("close_period"),
        lambda uow, a, w: periods.close_period(
            uow, a, granularity="month", period="not-a-month", idempotency_key=_key()
        ),
    ),
    # A day that is not a date is refused past the permission check, before any read.
    _svc(
        "backoffice.services.exports.export_day",
        needs("export"),
        lambda uow, a, w: exports.export_day(uow, a, "not-a-day", LocalDirectory(Path("unused"))),  # type: ignore[arg-type]
    ),
    _svc(
        "backoffice.services.exports.list_exports",
        needs("view_accounting"),
        lambda uow, a, w: exports.list_exports(uow, a),
    ),
    # No export recorded for that day, or a year out of range: refused past the permission check.
    _svc(
        "backoffice.services.exports.recorded_files",
        needs("view_accounting"),
        lambda uow, a, w: exports.recorded_files(uow, a, date(1999, 1, 1), Path("unused")),
    ),
    _svc(
        "backoffice.services.exports.year_fec",
        needs("export"),
        lambda uow, a, w: exports.year_fec(uow, a, 1, Path("unused")),
    ),
    _svc(
        "backoffice.services.admin.create_user",
        needs("manage_users"),
        lambda uow, a, w: admin.create_user(uow, a, login=f"new-{_key()[:8]}", role="agent", idempotency_key=_key()),
    ),
    _svc(
        "backoffice.services.admin.update_user",
        needs("manage_users"),
        lambda uow, a, w: admin.update_user(
            uow,
            a,
            login="target",
            role="agent",
            display_name="Target",
            expected_version=w.version("target"),
            idempotency_key=_key(),
        ),
    ),
    _svc(
        "backoffice.services.admin.set_user_active",
        needs("manage_users"),
        lambda uow, a, w: admin.set_user_active(
            uow, a, login="target", active=True, expected_version=w.version("target"), idempotency_key=_key()
        ),
    ),
    _svc(
        "backoffice.services.admin.reset_password",
        needs("manage_users"),
        lambda uow, a, w: admin.reset_password(
            uow, a, login="target", expected_version=w.version("target"), idempotency_key=_key()
        ),
    ),
    _svc(
        "backoffice.services.admin.list_roles",
        needs("manage_users"),
        lambda uow, a, w: admin.list_roles(uow, a),
    ),
    _svc(
        "backoffice.services.admin.list_permissions",
        needs("manage_users"),
        lambda uow, a, w: admin.list_permissions(uow, a),
    ),
    # An invalid name: roles are reference data shared by the whole test session.
    _svc(
        "backoffice.services.admin.create_role",
        needs("manage_users"),
        lambda uow, a, w: admin.create_role(uow, a, role="Not A Role", label="x", idempotency_key=_key()),
    ),
    _svc(
        "backoffice.services.admin.set_role_permissions",
        needs("manage_users"),
        lambda uow, a, w: admin.set_role_permissions(uow, a, desired={}, expected_versions={}, idempotency_key=_key()),
    ),
    _svc(
        "backoffice.services.users.add_user",
        needs("manage_users"),
        lambda uow, a, w: users.add_user(uow, a, f"added-{_key()[:8]}", "agent", "long enough pw"),
    ),
    _svc(
        "backoffice.services.users.list_users",
        needs("manage_users"),
        lambda uow, a, w: users.list_users(uow, a),
    ),
    _svc(
        "backoffice.services.users.set_locale",
        (),
        lambda uow, a, w: users.set_locale(uow, a, a.locale),
    ),
    _svc(
        "backoffice.services.saved_searches.save_search",
        needs("search_dossiers"),
        lambda uow, a, w: saved_searches.save_search(
            uow, a, f"mine {_key()[:8]}", SearchCriteria(), idempotency_key=_key()
        ),
        "private",
    ),
    _svc(
        "backoffice.services.saved_searches.save_search",
        needs("search_dossiers", "share_searches"),
        lambda uow, a, w: saved_searches.save_search(
            uow, a, f"shared {_key()[:8]}", SearchCriteria(), shared_with_role="agent", idempotency_key=_key()
        ),
        "shared",
    ),
    _svc(
        "backoffice.services.saved_searches.list_searches",
        needs("search_dossiers"),
        lambda uow, a, w: saved_searches.list_searches(uow, a),
    ),
    # The accountants' search lists (scopes of migration 0019) need view_accounting instead.
    _svc(
        "backoffice.services.saved_searches.save_search",
        needs("view_accounting"),
        lambda uow, a, w: saved_searches.save_search(
            uow, a, f"list {_key()[:8]}", DocumentCriteria(), idempotency_key=_key(), scope="supplier_invoices"
        ),
        "accounting",
    ),
    _svc(
        "backoffice.services.saved_searches.list_searches",
        needs("view_accounting"),
        lambda uow, a, w: saved_searches.list_searches(uow, a, scope="client_documents"),
        "accounting",
    ),
    _svc(
        "backoffice.services.saved_searches.delete_search",
        needs("view_accounting"),
        lambda uow, a, w: saved_searches.delete_search(uow, a, 0, idempotency_key=_key(), scope="client_documents"),
        "accounting",
    ),
    _svc(
        "backoffice.services.saved_searches.delete_search",
        needs("search_dossiers"),
        lambda uow, a, w: saved_searches.delete_search(uow, a, 0, idempotency_key=_key()),
    ),
    _svc(
        "backoffice.services.saved_searches.update_search",
        needs("search_dossiers"),
        lambda uow, a, w: saved_searches.update_search(
            uow,
            a,
            0,
            name="renamed",
            criteria=SearchCriteria(),
            sort="departure_date",
            descending=False,
            shared_with_role=None,
            expected_version=1,
            idempotency_key=_key(),
        ),
    ),
    _svc(
        "backoffice.services.documents.upload_document",
        needs("manage_documents"),
        lambda uow, a, w: documents.upload_document(
            uow, a, w.dossier, "Ticket", "ticket", "ticket.pdf", b"not a pdf", idempotency_key=_key(), storage=w.storage
        ),
    ),
    _svc(
        "backoffice.services.documents.replace_document",
        needs("manage_documents"),
        lambda uow, a, w: documents.replace_document(
            uow, a, 0, "ticket.pdf", b"not a pdf", expected_version=1, idempotency_key=_key(), storage=w.storage
        ),
    ),
    _svc(
        "backoffice.services.price_adjustments.add_price_adjustment",
        needs("price_adjustment"),
        lambda uow, a, w: price_adjustments.add_price_adjustment(
            uow,
            a,
            dossier_number=MISSING_DOSSIER,
            label="Geste",
            quantity=1,
            unit_sale_amount="-10.00",
            unit_purchase_amount="0.00",
            vat_rate="0",
            reason="matrix",
            expected_version=1,
            idempotency_key=_key(),
        ),
    ),
    _svc(
        "backoffice.services.modifications.record_modification",
        needs("record_modification"),
        lambda uow, a, w: modifications.record_modification(
            uow,
            a,
            dossier_number=MISSING_DOSSIER,
            kind="modification",
            description="matrix",
            expected_version=1,
            idempotency_key=_key(),
        ),
    ),
    _svc(
        "backoffice.services.modifications.validate_modification",
        needs("validate_modification"),
        lambda uow, a, w: modifications.validate_modification(
            uow, a, request_id=0, decision="validate", expected_version=1, idempotency_key=_key()
        ),
    ),
    _svc(
        "backoffice.services.regulations.apply_regulation",
        needs("regulation"),
        lambda uow, a, w: regulations.apply_regulation(
            uow, a, dossier_number=MISSING_DOSSIER, **REGULATION, expected_version=1, idempotency_key=_key()
        ),
    ),
    _svc(
        "backoffice.services.regulations.preview_mass_regulation",
        needs("mass_regulation"),
        lambda uow, a, w: regulations.preview_mass_regulation(uow, a, **REGULATION, numbers=MISSING_DOSSIER),
    ),
    _svc(
        "backoffice.services.regulations.apply_mass_regulation",
        needs("mass_regulation"),
        lambda uow, a, w: regulations.apply_mass_regulation(
            uow, a, **REGULATION, numbers=MISSING_DOSSIER, preview_token="", idempotency_key=_key()
        ),
    ),
    _svc(
        "backoffice.services.regulations.undo_regulation",
        (("regulation", "mass_regulation"),),
        lambda uow, a, w: regulations.undo_regulation(uow, a, regulation_id=0, reason="matrix", idempotency_key=_key()),
    ),
    _svc(
        "backoffice.services.regulations.list_regulations",
        needs("regulation"),
        lambda uow, a, w: regulations.list_regulations(uow, a),
    ),
    _svc(
        "backoffice.services.travel_book.set_travel_book",
        needs("manage_documents"),
        lambda uow, a, w: travel_book.set_travel_book(
            uow,
            a,
            dossier_number=MISSING_DOSSIER,
            complete=False,
            mode="manual",
            expected_version=1,
            idempotency_key=_key(),
            storage=w.storage,
        ),
    ),
    _svc(
        "backoffice.services.travel_book.send_travel_book",
        needs("manage_documents"),
        lambda uow, a, w: travel_book.send_travel_book(
            uow, a, dossier_number=MISSING_DOSSIER, idempotency_key=_key(), storage=w.storage
        ),
    ),
    _svc(
        "backoffice.services.payments.record_payment",
        needs("record_payment"),
        lambda uow, a, w: payments.record_payment(
            uow,
            a,
            dossier_number=MISSING_DOSSIER,
            method="cash",
            amount="10.00",
            expected_version=1,
            idempotency_key=_key(),
        ),
    ),
    _svc(
        "backoffice.services.payments.assign_payment",
        needs("record_payment"),
        lambda uow, a, w: payments.assign_payment(
            uow,
            a,
            payment_id="PAY-MISSING",
            dossier_number=MISSING_DOSSIER,
            reason="matrix",
            expected_version=1,
            idempotency_key=_key(),
        ),
    ),
    _svc(
        "backoffice.services.balances.charge_now",
        needs("record_payment"),
        lambda uow, a, w: balances.charge_now(
            uow, a, dossier_number=MISSING_DOSSIER, seq=2, expected_version=1, idempotency_key=_key()
        ),
    ),
    _svc(
        "backoffice.services.refunds.request_refund",
        needs("refund"),
        lambda uow, a, w: refunds.request_refund(
            uow,
            a,
            dossier_number=MISSING_DOSSIER,
            payment_id="PAY-MISSING",
            amount="10.00",
            reason="matrix",
            expected_version=1,
            idempotency_key=_key(),
        ),
    ),
    _svc(
        "backoffice.services.refunds.approve_refund",
        needs("approve_refund"),
        lambda uow, a, w: refunds.approve_refund(uow, a, refund_id=0, expected_version=1, idempotency_key=_key()),
    ),
    _svc(
        "backoffice.services.refunds.refuse_refund",
        needs("approve_refund"),
        lambda uow, a, w: refunds.refuse_refund(
            uow, a, refund_id=0, reason="matrix", expected_version=1, idempotency_key=_key()
        ),
    ),
    _svc(
        "backoffice.services.client_invoices.issue_invoice",
        needs("issue_invoice"),
        lambda uow, a, w: client_invoices.issue_invoice(
            uow, a, dossier_number=MISSING_DOSSIER, expected_version=1, idempotency_key=_key()
        ),
    ),
    _svc(
        "backoffice.services.client_invoices.issue_credit_note",
        needs("issue_invoice"),
        lambda uow, a, w: client_invoices.issue_credit_note(
            uow, a, invoice_number="XX-FA-1999-000001", reason="matrix", idempotency_key=_key()
        ),
    ),
    _svc(
        "backoffice.services.supplier_contacts.list_supplier_contacts",
        needs("manage_suppliers"),
        lambda uow, a, w: supplier_contacts.list_supplier_contacts(uow, a),
    ),
    _svc(
        "backoffice.services.supplier_contacts.set_supplier_contact",
        needs("manage_suppliers"),
        lambda uow, a, w: supplier_contacts.set_supplier_contact(
            uow, a, supplier_code="NOPE", email="", language="fr", expected_version=1, idempotency_key=_key()
        ),
    ),
    # An unknown supplier and an unreadable file are refused past the permission check, writing nothing.
    _svc(
        "backoffice.services.supplier_invoice_registration.register_form",
        needs("reconcile"),
        lambda uow, a, w: supplier_invoice_registration.register_form(
            uow,
            a,
            supplier_code="NOSUPPLIER",
            invoice_number="F-MATRIX",
            invoice_date="2026-01-15",
            currency="EUR",
            lines=[{"amount_excl_tax": "1.00", "vat_rate": "0"}],
            idempotency_key=_key(),
        ),
    ),
    _svc(
        "backoffice.services.supplier_invoice_registration.register_file",
        needs("reconcile"),
        lambda uow, a, w: supplier_invoice_registration.register_file(
            uow, a, filename="matrix.xml", data=b"<Invoice", idempotency_key=_key()
        ),
    ),
    _svc(
        "backoffice.mail.outbox.list_mails",
        needs("view_outbox"),
        lambda uow, a, w: outbox.list_mails(uow, a),
    ),
    _svc(
        "backoffice.mail.sender.deliver_now",
        needs("view_outbox"),
        lambda uow, a, w: sender.deliver_now(uow.engine, a, None, 25),
    ),
    # An empty reason is refused past the permission check, before any read of the marts.
    _svc(
        "backoffice.services.write_offs.write_off",
        needs("write_off"),
        lambda uow, a, w: write_offs.write_off(
            uow,
            a,
            dossier_number=w.dossier,
            supplier_code="HOTEL01",
            amount_seen="1.00",
            reason="",
            idempotency_key=_key(),
        ),
    ),
    _svc(
        "backoffice.services.write_offs.undo_write_off",
        needs("write_off"),
        lambda uow, a, w: write_offs.undo_write_off(uow, a, write_off_id=0, reason="", idempotency_key=_key()),
    ),
    _svc(
        "backoffice.services.write_offs.turn_into_regulation",
        needs("regulation"),
        lambda uow, a, w: write_offs.turn_into_regulation(
            uow,
            a,
            dossier_number=w.dossier,
            supplier_code="HOTEL01",
            amount_seen="1.00",
            reason="",
            idempotency_key=_key(),
        ),
    ),
    *[
        _svc(f"backoffice.services.reconciliation.{name}", needs("reconcile"), call)
        for name, call in {
            "confirm": lambda uow, a, w: reconciliation.confirm(
                uow,
                a,
                **MISSING_LINE,
                dossier_number=MISSING_DOSSIER,
                expected_decision_id=None,
                idempotency_key=_key(),
            ),
            "reject": lambda uow, a, w: reconciliation.reject(
                uow,
                a,
                **MISSING_LINE,
                dossier_number=MISSING_DOSSIER,
                expected_decision_id=None,
                idempotency_key=_key(),
            ),
            "manual_match": lambda uow, a, w: reconciliation.manual_match(
                uow,
                a,
                **MISSING_LINE,
                allocations=MISSING_DOSSIER,
                reason="matrix",
                expected_decision_id=None,
                idempotency_key=_key(),
            ),
            "unreconcile": lambda uow, a, w: reconciliation.unreconcile(
                uow, a, **MISSING_LINE, reason="matrix", expected_decision_id=None, idempotency_key=_key()
            ),
            # A count of 0 is refused before any read: the matrix database has no matching built.
            "bulk_confirm": lambda uow, a, w: reconciliation.bulk_confirm(
                uow, a, filters=workbench.Filters(), expected_count=0, idempotency_key=_key()
            ),
        }.items()
    ],
]


def service_functions() -> set[str]:
    """Public functions of backoffice.services and backoffice.mail that act for an Actor in a
    transaction of their own (first parameter a unit of work or an engine)."""
    found = set()
    for package in (backoffice.services, backoffice.mail):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            if info.name in ("audit", "idempotency"):  # the checking machinery itself
                continue
            for name, function in inspect.getmembers(module, inspect.isfunction):
                if name.startswith("_") or function.__module__ != module.__name__:
                    continue
                parameters = list(inspect.signature(function).parameters.values())
                acts = any(p.name == "actor" and "Actor" in str(p.annotation) for p in parameters)
                if acts and parameters[0].name in ("uow", "engine"):
                    found.add(f"{module.__name__}.{name}")
    return found - NOT_SERVICES.keys()


def test_every_service_function_has_an_entry() -> None:
    covered = {s.function for s in SERVICES}
    missing = service_functions() - covered
    assert not missing, f"add an entry to SERVICES in {Path(__file__).name} for: {sorted(missing)}"
    assert covered <= service_functions(), (
        f"entries for functions that no longer exist: {covered - service_functions()}"
    )


@pytest.fixture(scope="module")
def world(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One account per role (named after it), an account to administer, a dossier. Shared by the
    whole module: the calls change nothing another case depends on."""
    with engine.begin() as conn:
        tables = conn.execute(
            sa.text("SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname IN ('raw', 'app', 'audit')")
        ).scalars()
        keep = {"app.roles", "app.permissions", "app.role_permissions"}
        conn.execute(sa.text(f"TRUNCATE {', '.join(sorted(set(tables) - keep))} RESTART IDENTITY CASCADE"))
    for role in ROLES:
        f.user(engine, role.replace("_", "-"), role)
    f.user(engine, "target", "agent")
    yield World(engine, f.dossier(engine), LocalStorage(tmp_path_factory.mktemp("documents")))


def _granted(engine: Engine, role: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT permission FROM app.role_permissions WHERE role = :r"), {"r": role})
        return set(rows.scalars())


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.id)
def test_refused_exactly_when_the_role_lacks_the_permission(world: World, service: Service, role: str) -> None:
    with UnitOfWork(world.engine) as uow:
        actor = load_actor(uow, role.replace("_", "-"))
    granted = _granted(world.engine, role)
    assert actor.permissions == granted, "the actor's permissions are the role's rows of app.role_permissions"
    with world.engine.connect() as conn:
        mark = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM audit.events")).scalar_one()
    refusal: PermissionDenied | None = None
    try:
        with UnitOfWork(world.engine) as uow:
            service.call(uow, actor, world)
    except PermissionDenied as error:
        refusal = error
    except DomainError:
        pass  # past the permission check, refused for another reason
    with world.engine.connect() as conn:
        audited = conn.execute(
            sa.text(
                """SELECT detail FROM audit.events
                   WHERE id > :mark AND actor = :actor AND outcome = 'refused' AND detail LIKE '%is not allowed%'"""
            ),
            {"mark": mark, "actor": actor.login},
        ).scalars()
        audited = list(audited)
    if service.allowed(granted):
        assert refusal is None, f"{role} holds {service.needs} but was refused: {refusal}"
        assert audited == []
    else:
        assert refusal is not None, f"{role} lacks {service.needs} but {service.id} let it through"
        assert audited == [str(refusal)]
