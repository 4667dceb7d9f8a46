"""Every form's validation fed generated garbage (hypothesis), at the service boundary on the real database.

Each target is what a form sends to its service: the fields a person types, filled with random text
(empty, huge, control characters, NUL, other scripts, numbers in every spelling) or with values of
the wrong type. The service may accept, or refuse with a domain error; an InvalidInput must name one
of the form's fields. Anything else (a database error, a decimal.InvalidOperation, a TypeError) is a
crash. After a refusal the tables are exactly as before: nothing half-written.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import factories as f
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from backoffice.domain.errors import DomainError, InvalidInput
from backoffice.domain.permissions import Actor
from backoffice.services import (
    admin,
    modifications,
    payments,
    price_adjustments,
    refunds,
    regulations,
    sessions,
    supplier_contacts,
)
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor

# `make soak` multiplies every count (BACKOFFICE_FUZZ_SCALE=20: 1,000 cases per form).
SCALE = int(os.environ.get("BACKOFFICE_FUZZ_SCALE", "1"))
FUZZ = settings(
    max_examples=50 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TYPED = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "1e400",
            "NaN",
            "Infinity",
            "12,50",
            "1 000.00",
            "0.001",
            "99999999999999.99",
            "١٢٣",
            "\x00",
            "a\x00b",
            "\u202e",
            "'; DROP TABLE app.users; --",
            "<script>",
            "2026-02-30",
            "None",
        ]
    ),
)
# What a form could send in place of a text field when something upstream goes wrong.
ANY = st.one_of(TYPED, st.none(), st.integers(), st.floats(), st.booleans(), st.lists(TYPED, max_size=2))
# Numbers typed into amount, rate and quantity fields: every size and spelling Python's parsers take.
NUMBER = st.one_of(
    ANY,
    st.decimals().map(str),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats().map(str),
    st.sampled_from(["1e26", "-1E+400", "1" * 5000, "0.1e-30", "+12.50", " 12.50 ", "12.5e0", "0E-1000"]),
)
# Tables a refused action must leave untouched (the audit log gains the refusal, by design).
WATCHED = (
    "app.dossiers",
    "app.price_lines",
    "app.payments",
    "app.refunds",
    "app.modification_requests",
    "app.regulations",
    "app.users",
    "app.suppliers",
    "app.idempotency_keys",
    "app.outbox",
    "app.sessions",
)


def snapshot(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        present = set(
            conn.execute(
                sa.text("SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname = 'app'")
            ).scalars()
        )
        return {
            table: conn.execute(
                sa.text(f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t")
            ).scalar_one()
            for table in WATCHED
            if table in present
        }


def version(engine: Engine, number: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT version FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()


def attempt(engine: Engine, call: Callable[[UnitOfWork], Any], fields: set[str]) -> None:
    """Run one fuzzed form: accepted, or refused naming one of `fields` and changing nothing."""
    before = snapshot(engine)
    try:
        with UnitOfWork(engine) as uow:
            call(uow)
    except InvalidInput as refused:
        assert refused.field in fields, f"InvalidInput names {refused.field!r}, not one of the form's fields"
        assert refused.problem.strip()
    except DomainError as refused:
        assert str(refused).strip()
    else:
        return
    assert snapshot(engine) == before, "a refused action wrote something"


@pytest.fixture
def world(db: Engine) -> tuple[Engine, Actor, str, str]:
    f.user(db, "root", "admin")
    with UnitOfWork(db) as uow:
        root = load_actor(uow, "root")
    number = f.dossier(db)
    payment = f.payment(db, number, "800.00")
    return db, root, number, payment


@FUZZ
@given(
    method=st.one_of(st.sampled_from(list(payments.METHODS) if hasattr(payments, "METHODS") else ["cash"]), ANY),
    amount=NUMBER,
    currency=st.one_of(st.none(), st.just("EUR"), ANY),
    received_on=st.one_of(st.none(), ANY),
    extra=st.fixed_dictionaries({"voucher_code": ANY, "reference": ANY, "payer_name": ANY, "note": ANY}),
)
def test_manual_payment_form(world, method: Any, amount: Any, currency: Any, received_on: Any, extra: dict) -> None:
    engine, root, number, _ = world
    fields = {"method", "amount", "currency", "received_on", *extra, "dossier_number"}
    attempt(
        engine,
        lambda uow: payments.record_payment(
            uow,
            root,
            dossier_number=number,
            method=method,
            amount=amount,
            currency=currency,
            received_on=received_on,
            expected_version=version(engine, number),
            idempotency_key=uuid.uuid4().hex,
            **extra,
        ),
        fields,
    )


@FUZZ
@given(payment_id=st.one_of(st.just("ours"), ANY), amount=NUMBER, reason=ANY)
def test_refund_form(world, payment_id: Any, amount: Any, reason: Any) -> None:
    engine, root, number, payment = world
    attempt(
        engine,
        lambda uow: refunds.request_refund(
            uow,
            root,
            dossier_number=number,
            payment_id=payment if payment_id == "ours" else payment_id,
            amount=amount,
            reason=reason,
            expected_version=version(engine, number),
            idempotency_key=uuid.uuid4().hex,
        ),
        {"payment_id", "amount", "reason"},
    )


LINE = st.fixed_dictionaries(
    {},
    optional={
        "service_id": st.one_of(st.just("S1"), ANY),
        "label": ANY,
        "quantity": NUMBER,
        "unit_sale_amount": NUMBER,
        "unit_purchase_amount": NUMBER,
        "vat_rate": NUMBER,
        "purchase_currency": ANY,
    },
)


@FUZZ
@given(
    kind=st.one_of(st.sampled_from(modifications.KINDS), ANY),
    description=ANY,
    lines_to_add=st.lists(LINE, max_size=2),
    lines_to_cancel=st.lists(ANY, max_size=2),
    fee_lines=st.lists(LINE, max_size=2),
)
def test_modification_form(world, kind: Any, description: Any, lines_to_add, lines_to_cancel, fee_lines) -> None:
    engine, root, number, _ = world
    attempt(
        engine,
        lambda uow: modifications.record_modification(
            uow,
            root,
            dossier_number=number,
            kind=kind,
            description=description,
            lines_to_add=lines_to_add,
            lines_to_cancel=lines_to_cancel,
            fee_lines=fee_lines,
            expected_version=version(engine, number),
            idempotency_key=uuid.uuid4().hex,
        ),
        {"kind", "description", "lines_to_add", "lines_to_cancel", "fee_lines"}
        | {
            f"{group}[{i}].{name}"
            for group in ("lines_to_add", "fee_lines", "lines_to_cancel")
            for i in range(3)
            for name in (
                "",
                "service_id",
                "label",
                "quantity",
                "unit_sale_amount",
                "unit_purchase_amount",
                "vat_rate",
                "purchase_currency",
            )
        }
        | {f"lines_to_cancel[{i}]" for i in range(3)},
    )


@FUZZ
@given(
    supplier_code=st.one_of(st.just("HOTEL01"), ANY),
    service_kinds=st.one_of(st.just(["hotel"]), st.lists(ANY, max_size=3)),
    mode=st.one_of(st.sampled_from(["amount", "percent"]), ANY),
    purchase_value=NUMBER,
    sale_value=NUMBER,
    currency=st.one_of(st.none(), st.just("EUR"), ANY),
    reason=ANY,
)
def test_regulation_form(
    world, supplier_code, service_kinds, mode, purchase_value, sale_value, currency, reason
) -> None:
    engine, root, number, _ = world
    attempt(
        engine,
        lambda uow: regulations.apply_regulation(
            uow,
            root,
            dossier_number=number,
            supplier_code=supplier_code,
            service_kinds=service_kinds,
            mode=mode,
            purchase_value=purchase_value,
            sale_value=sale_value,
            currency=currency,
            reason=reason,
            expected_version=version(engine, number),
            idempotency_key=uuid.uuid4().hex,
        ),
        {"supplier_code", "service_kinds", "mode", "purchase_value", "sale_value", "currency", "reason"},
    )


@FUZZ
@given(numbers=ANY, purchase_value=NUMBER, reason=ANY)
def test_mass_regulation_preview_form(world, numbers: Any, purchase_value: Any, reason: Any) -> None:
    engine, root, _, _ = world
    attempt(
        engine,
        lambda uow: regulations.preview_mass_regulation(
            uow,
            root,
            supplier_code="HOTEL01",
            service_kinds=["hotel"],
            mode="amount",
            purchase_value=purchase_value,
            reason=reason,
            numbers=numbers,
        ),
        {"numbers", "purchase_value", "reason", "currency", "dossiers"},
    )


@FUZZ
@given(
    service_id=st.one_of(st.none(), st.just("S1"), ANY),
    label=ANY,
    quantity=NUMBER,
    unit_sale_amount=NUMBER,
    unit_purchase_amount=NUMBER,
    purchase_currency=st.one_of(st.none(), ANY),
    vat_rate=NUMBER,
    reason=ANY,
)
def test_price_adjustment_form(
    world, service_id, label, quantity, unit_sale_amount, unit_purchase_amount, purchase_currency, vat_rate, reason
) -> None:
    engine, root, number, _ = world
    fields = {
        "service_id",
        "label",
        "quantity",
        "unit_sale_amount",
        "unit_purchase_amount",
        "purchase_currency",
        "vat_rate",
        "reason",
    }
    attempt(
        engine,
        lambda uow: price_adjustments.add_price_adjustment(
            uow,
            root,
            dossier_number=number,
            service_id=service_id,
            label=label,
            quantity=quantity,
            unit_sale_amount=unit_sale_amount,
            unit_purchase_amount=unit_purchase_amount,
            purchase_currency=purchase_currency,
            vat_rate=vat_rate,
            reason=reason,
            expected_version=version(engine, number),
            idempotency_key=uuid.uuid4().hex,
        ),
        fields,
    )


@FUZZ
@given(
    login=ANY,
    role=st.one_of(st.just("agent"), ANY),
    display_name=st.one_of(st.none(), ANY),
    locale=st.one_of(st.just("fr"), ANY),
)
def test_new_user_form(world, login: Any, role: Any, display_name: Any, locale: Any) -> None:
    engine, root, _, _ = world
    attempt(
        engine,
        lambda uow: admin.create_user(
            uow,
            root,
            login=login,
            role=role,
            display_name=display_name,
            locale=locale,
            idempotency_key=uuid.uuid4().hex,
        ),
        {"login", "role", "display_name", "locale"},
    )


@FUZZ
@given(email=st.one_of(st.none(), st.emails(), ANY), language=st.one_of(st.just("fr"), ANY))
def test_supplier_contact_form(world, email: Any, language: Any) -> None:
    engine, root, _, _ = world
    with engine.connect() as conn:
        current = conn.execute(
            sa.text("SELECT contact_version FROM app.suppliers WHERE supplier_code = 'HOTEL01'")
        ).scalar_one_or_none()
    if current is None:
        f.supplier(engine, "HOTEL01")
        current = 1
    attempt(
        engine,
        lambda uow: supplier_contacts.set_supplier_contact(
            uow,
            root,
            supplier_code="HOTEL01",
            email=email,
            language=language,
            expected_version=current,
            idempotency_key=uuid.uuid4().hex,
        ),
        {"email", "language", "supplier_code"},
    )


@settings(max_examples=40 * SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(login=st.one_of(st.just("root"), TYPED), password=TYPED)
def test_login_form(world, login: str, password: str) -> None:
    engine = world[0]
    before = snapshot(engine)
    try:
        with UnitOfWork(engine) as uow:
            sessions.log_in(uow, login, password)
    except DomainError as refused:
        assert str(refused).strip()
    else:
        raise AssertionError("a garbage password opened a session")
    assert snapshot(engine) == before
