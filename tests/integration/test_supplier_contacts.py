"""Supplier contacts at the service boundary: set, clear, refusals by role, bad input, stale, replay."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa

from backoffice.domain.errors import IdempotencyConflict, InvalidInput, NotFound, PermissionDenied, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.ingest.suppliers import load_suppliers
from backoffice.services.supplier_contacts import list_supplier_contacts, set_supplier_contact
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor


def actor(engine: sa.Engine, login: str, role: str) -> Actor:
    f.user(engine, login, role)
    with UnitOfWork(engine) as uow:
        return load_actor(uow, login)


def key() -> str:
    return uuid.uuid4().hex


def test_set_then_clear_a_contact_and_list_missing_first(db: sa.Engine) -> None:
    f.supplier(db, "AIR01", email="resa@air01.example")
    f.supplier(db, "HOT02")
    senior = actor(db, "sam", "senior_agent")
    with UnitOfWork(db) as uow:
        assert [s.supplier_code for s in list_supplier_contacts(uow, senior)] == ["HOT02", "AIR01"]
        done = set_supplier_contact(
            uow,
            senior,
            supplier_code="hot02",
            email=" resa@hot02.example ",
            language="en",
            expected_version=1,
            idempotency_key=key(),
        )
    assert (done.email, done.language, done.contact_version) == ("resa@hot02.example", "en", 2)
    with UnitOfWork(db) as uow:
        cleared = set_supplier_contact(
            uow, senior, supplier_code="HOT02", email="", language="en", expected_version=2, idempotency_key=key()
        )
    assert cleared.email is None
    with db.connect() as conn:
        events = conn.execute(
            sa.text("SELECT before, after FROM audit.events WHERE action = 'set_supplier_contact' ORDER BY id")
        ).all()
    assert [(e.before["email"], e.after["email"]) for e in events] == [
        (None, "resa@hot02.example"),
        ("resa@hot02.example", None),
    ]


def test_ingesting_the_reference_again_keeps_the_contact(db: sa.Engine, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    reference.mkdir()
    (reference / "suppliers.csv").write_text(
        "supplier_code,name,country,vat_number,iban,currency,payment_terms_days,ledger_account\n"
        "HOT02,Hotel Deux,FR,,,EUR,30,401HOT02\n",
        encoding="utf-8",
    )
    f.supplier(db, "HOT02")
    senior = actor(db, "sam", "senior_agent")
    with UnitOfWork(db) as uow:
        set_supplier_contact(
            uow,
            senior,
            supplier_code="HOT02",
            email="a@hot02.example",
            language="fr",
            expected_version=1,
            idempotency_key=key(),
        )
    load_suppliers(date(2026, 1, 1), tmp_path, db)
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT name, email FROM app.suppliers WHERE supplier_code = 'HOT02'")).one()
    assert tuple(row) == ("Hotel Deux", "a@hot02.example")


def test_refusals_are_named_and_audited(db: sa.Engine) -> None:
    f.supplier(db, "HOT02")
    agent = actor(db, "alice", "agent")
    senior = actor(db, "sam", "senior_agent")
    arguments = {"supplier_code": "HOT02", "email": "x@hot02.example", "language": "fr", "expected_version": 1}
    with UnitOfWork(db) as uow, pytest.raises(PermissionDenied):
        set_supplier_contact(uow, agent, **arguments, idempotency_key=key())
    for field, change in (("email", {"email": "not an address"}), ("language", {"language": "de"})):
        with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as error:
            set_supplier_contact(uow, senior, **{**arguments, **change}, idempotency_key=key())
        assert error.value.field == field
    with UnitOfWork(db) as uow, pytest.raises(NotFound):
        set_supplier_contact(uow, senior, **{**arguments, "supplier_code": "NOPE"}, idempotency_key=key())
    k = key()
    with UnitOfWork(db) as uow:
        first = set_supplier_contact(uow, senior, **arguments, idempotency_key=k)
        assert set_supplier_contact(uow, senior, **arguments, idempotency_key=k) == first
    with UnitOfWork(db) as uow, pytest.raises(IdempotencyConflict):
        set_supplier_contact(uow, senior, **{**arguments, "language": "en"}, idempotency_key=k)
    with UnitOfWork(db) as uow, pytest.raises(StaleVersion):
        set_supplier_contact(uow, senior, **arguments, idempotency_key=key())
    with db.connect() as conn:
        outcomes = conn.execute(
            sa.text("SELECT outcome, count(*) FROM audit.events WHERE action = 'set_supplier_contact' GROUP BY 1")
        ).all()
    assert dict(outcomes) == {"refused": 5, "done": 1}
