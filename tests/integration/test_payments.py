"""Manual payments and the queue of payments without a dossier, at the service boundary on real PostgreSQL."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import factories as f
import pytest
import sqlalchemy as sa

from backoffice.dbt_runner import run_dbt
from backoffice.domain.clock import accounting_today
from backoffice.domain.errors import IdempotencyConflict, InvalidInput, NotFound, PermissionDenied, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.queries.dossier import dossier_view
from backoffice.services.payments import (
    METHODS,
    assign_payment,
    record_payment,
    schedule_states,
    unattributed_payments,
)
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor


@pytest.fixture(scope="session")
def price_lines_mart(database_url: str) -> None:
    f.build_price_lines_mart(database_url)


def actor(engine: sa.Engine, login: str, role: str) -> Actor:
    f.user(engine, login, role)
    with UnitOfWork(engine) as uow:
        return load_actor(uow, login)


def pay(db: sa.Engine, who: Actor, number: str, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "dossier_number": number,
        "method": "cheque",
        "amount": "250.00",
        "reference": "CHQ 0012345",
        "payer_name": "Jean Dupont",
        "expected_version": 1,
        "idempotency_key": uuid.uuid4().hex,
        **overrides,
    }
    with UnitOfWork(db) as uow:
        return record_payment(uow, who, **arguments)


def assign(db: sa.Engine, who: Actor, payment_id: str, number: str, **overrides: Any) -> None:
    arguments: dict[str, Any] = {
        "payment_id": payment_id,
        "dossier_number": number,
        "reason": "transfer label names the client",
        "expected_version": 1,
        "idempotency_key": uuid.uuid4().hex,
        **overrides,
    }
    with UnitOfWork(db) as uow:
        assign_payment(uow, who, **arguments)


def scalar(db: sa.Engine, sql: str, **params: Any) -> Any:
    with db.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def events(db: sa.Engine, action: str) -> list[sa.Row]:
    with db.connect() as conn:
        return list(
            conn.execute(
                sa.text("SELECT actor, outcome, dossier_number, after, detail FROM audit.events WHERE action = :a"),
                {"a": action},
            )
        )


def test_every_method_is_recorded_with_its_details_and_bumps_the_version(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db)
    ids = []
    for version, method in enumerate(METHODS, start=1):
        extra = {"voucher_code": "kdo-2026-0042"} if method == "gift_voucher" else {}
        ids.append(pay(db, alice, number, method=method, amount="10.50", expected_version=version, **extra))
    with db.connect() as conn:
        rows = conn.execute(
            sa.text(
                """SELECT payment_id, method, amount, currency, status, origin, voucher_code, created_by
                   FROM app.payments WHERE dossier_number = :n ORDER BY payment_id"""
            ),
            {"n": number},
        ).all()
    assert [r.payment_id for r in rows] == sorted(ids) and all(i.startswith("MAN-") for i in ids)
    assert {r.method for r in rows} == set(METHODS)
    assert {(r.amount, r.currency, r.status, r.origin, r.created_by) for r in rows} == {
        (Decimal("10.50"), "EUR", "captured", "manual", "alice")
    }
    assert [r.voucher_code for r in rows if r.method == "gift_voucher"] == ["KDO-2026-0042"]
    assert scalar(db, "SELECT version FROM app.dossiers WHERE dossier_number = :n", n=number) == len(METHODS) + 1
    done = events(db, "record_payment")
    assert len(done) == len(METHODS) and done[0].after["version"] == 2 and done[0].after["payment_id"] == ids[0]


def test_a_back_dated_payment_keeps_its_day_and_the_schedule_states_follow(
    db: sa.Engine, price_lines_mart: None
) -> None:
    alice = actor(db, "alice", "agent")
    today = accounting_today()
    number = f.dossier(
        db,
        schedule=[
            {"due_date": today - timedelta(days=30), "amount": "300.00"},
            {"due_date": today - timedelta(days=1), "amount": "400.00", "kind": "instalment"},
            {"due_date": today, "amount": "100.00", "kind": "instalment"},
            {"due_date": today + timedelta(days=20), "amount": "200.00", "kind": "balance"},
        ],
    )
    pay(db, alice, number, amount="500.00", received_on=(today - timedelta(days=3)).isoformat())
    with db.connect() as conn:
        view = dossier_view(conn, number)
    assert view.paid_total == Decimal("500.00") and view.payments[0].received_at.date() == today - timedelta(days=3)
    states = [(s.state, s.remaining) for s in schedule_states(view.schedule, view.paid_total, today)]
    assert states == [
        ("paid", Decimal("0.00")),
        ("overdue", Decimal("200.00")),
        ("due", Decimal("100.00")),
        ("upcoming", Decimal("200.00")),
    ]


# Between them, these two zones are on another date than Paris at every hour of the day.
@pytest.mark.parametrize("server_zone", ["Pacific/Kiritimati", "Etc/GMT+12"])
def test_today_is_the_accountants_day_whatever_the_servers_timezone(
    db: sa.Engine, monkeypatch: pytest.MonkeyPatch, server_zone: str
) -> None:
    """A payment dated the accountant's today is taken and dated that day in Paris; the day after
    is refused as in the future. The server's own date (its TZ, or UTC) plays no part: it once
    refused Paris's today between 23:00 and midnight UTC."""
    alice = actor(db, "alice", "agent")
    number = f.dossier(db)
    monkeypatch.setenv("TZ", server_zone)
    time.tzset()
    try:
        today = accounting_today()
        with pytest.raises(InvalidInput) as refused:
            pay(db, alice, number, received_on=(today + timedelta(days=1)).isoformat())
        assert refused.value.field == "received_on"
        payment_id = pay(db, alice, number, received_on=today.isoformat())
    finally:
        monkeypatch.undo()
        time.tzset()
    posted = scalar(
        db,
        "SELECT (received_at AT TIME ZONE 'Europe/Paris')::date FROM app.payments WHERE payment_id = :p",
        p=payment_id,
    )
    assert posted == today


def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"method": "bitcoin"}, "method"),
        ({"amount": 12.5}, "amount"),
        ({"amount": "-5.00"}, "amount"),
        ({"amount": "1.005"}, "amount"),
        ({"method": "gift_voucher"}, "voucher_code"),
        ({"method": "gift_voucher", "voucher_code": "A B"}, "voucher_code"),
        ({"method": "cash", "voucher_code": "ABCD1234"}, "voucher_code"),
        ({"received_on": (accounting_today() + timedelta(days=1)).isoformat()}, "received_on"),
        ({"received_on": "31/12/2026"}, "received_on"),
        ({"currency": "USD"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"dossier_number": " "}, "dossier_number"),
        ({"note": "x" * 501}, "note"),
    ]
    for overrides, field in cases:
        with pytest.raises(InvalidInput) as refused:
            pay(db, alice, number, **overrides)
        assert refused.value.field == field, overrides
    assert scalar(db, "SELECT count(*) FROM app.payments") == 0
    assert scalar(db, "SELECT version FROM app.dossiers") == 1
    refusals = events(db, "record_payment")
    assert [r.outcome for r in refusals] == ["refused"] * len(cases)
    assert [r.detail.split(":")[0] for r in refusals] == [field for _, field in cases]


def test_refused_without_the_permission_and_audited(db: sa.Engine) -> None:
    number = f.dossier(db)
    reader = Actor("reader", "agent", frozenset({"search_dossiers"}))
    with pytest.raises(PermissionDenied):
        pay(db, reader, number)
    with pytest.raises(PermissionDenied):
        assign(db, reader, "BANK-1", number)
    assert scalar(db, "SELECT count(*) FROM app.payments") == 0
    assert {(e.actor, e.outcome) for e in events(db, "record_payment") + events(db, "assign_payment")} == {
        ("reader", "refused")
    }


def test_every_role_granted_record_payment_may_record(db: sa.Engine) -> None:
    number = f.dossier(db)
    for version, role in enumerate(("agent", "senior_agent", "accountant", "admin"), start=1):
        assert pay(db, actor(db, f"user-{version}", role), number, expected_version=version).startswith("MAN-")


def test_same_key_same_request_one_payment_other_request_refused(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db)
    key = uuid.uuid4().hex
    first = pay(db, alice, number, idempotency_key=key)
    assert pay(db, alice, number, idempotency_key=key) == first
    with pytest.raises(IdempotencyConflict):
        pay(db, alice, number, idempotency_key=key, amount="251.00")
    assert scalar(db, "SELECT count(*) FROM app.payments") == 1
    assert scalar(db, "SELECT version FROM app.dossiers") == 2


def test_a_stale_version_and_an_unknown_dossier_are_refused(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db)
    pay(db, alice, number)
    with pytest.raises(StaleVersion):
        pay(db, alice, number, expected_version=1)
    with pytest.raises(NotFound):
        pay(db, alice, "BK-1999-000001")
    assert scalar(db, "SELECT count(*) FROM app.payments") == 1


def test_the_database_refuses_to_change_a_manual_payment(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    payment_id = pay(db, alice, f.dossier(db))
    for statement in (
        "UPDATE app.payments SET amount = 1 WHERE payment_id = :p",
        "DELETE FROM app.payments WHERE payment_id = :p",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="immutable"), db.begin() as conn:
            conn.execute(sa.text(statement), {"p": payment_id})


def queue(db: sa.Engine) -> list[str]:
    with db.connect() as conn:
        return [p.payment_id for p in unattributed_payments(conn)]


def test_the_queue_holds_payments_naming_no_dossier_or_an_unknown_one(db: sa.Engine) -> None:
    number = f.dossier(db)
    f.payment(db, None, "120.00", payment_id="BANK-1", method="transfer", provider="bank")
    f.payment(db, "BK-1999-999999", "80.00", payment_id="BANK-2", method="transfer", provider="bank")
    f.payment(db, number, "50.00", payment_id="CARD-1")
    f.payment(db, None, "70.00", "failed", payment_id="CARD-2")
    assert queue(db) == ["BANK-1", "BANK-2"]


def test_an_assigned_transfer_counts_on_the_dossier_and_leaves_the_queue(
    db: sa.Engine, price_lines_mart: None, database_url: str
) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db)
    f.payment(db, number, "100.00", payment_id="CARD-1")
    f.payment(db, None, "120.00", payment_id="BANK-1", method="transfer", provider="bank", payer_name="DUPONT J")
    assign(db, alice, "BANK-1", number)
    assert queue(db) == []
    with db.connect() as conn:
        view = dossier_view(conn, number)
        attribution = conn.execute(
            sa.text("SELECT dossier_number, reason, attributed_by FROM app.payment_attributions")
        )
        assert tuple(attribution.one()) == (number, "transfer label names the client", "alice")
    assert view.paid_total == Decimal("220.00") and [p.payment_id for p in view.payments] == ["CARD-1", "BANK-1"]
    assert view.summary.version == 2
    [done] = events(db, "assign_payment")
    assert done.outcome == "done" and done.dossier_number == number and done.after["payment_id"] == "BANK-1"
    # The dbt staging model (what the marts and the accounting entries read) sees the attribution too.
    run_dbt(["run", "--select", "stg_app__payments"], database_url=database_url)
    with db.connect() as conn:
        staged = conn.execute(
            sa.text(
                "SELECT dossier_number, received_dossier_number FROM staging.stg_app__payments "
                "WHERE payment_id = 'BANK-1'"
            )
        ).one()
    assert tuple(staged) == (number, None)


def test_assignment_refusals(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db)
    dollars = f.dossier(db, currency="USD")
    f.payment(db, number, "50.00", payment_id="CARD-1")
    f.payment(db, None, "120.00", payment_id="BANK-1", method="transfer")
    cases: list[tuple[dict[str, Any], type[Exception], str | None]] = [
        ({"payment_id": "CARD-1"}, InvalidInput, "payment_id"),  # already belongs to a dossier
        ({"payment_id": "NOPE"}, InvalidInput, "payment_id"),
        ({"payment_id": ""}, InvalidInput, "payment_id"),
        ({"reason": "  "}, InvalidInput, "reason"),
        ({"dossier_number": "BK-1999-000001"}, InvalidInput, "dossier_number"),
        ({"dossier_number": dollars}, InvalidInput, "dossier_number"),  # currencies are never mixed
        ({"expected_version": 7}, StaleVersion, None),
    ]
    for overrides, error, field in cases:
        with pytest.raises(error) as refused:
            assign(db, alice, **{"payment_id": "BANK-1", "number": number, **overrides})
        assert getattr(refused.value, "field", None) == field
    assert scalar(db, "SELECT count(*) FROM app.payment_attributions") == 0
    assert len(events(db, "assign_payment")) == len(cases)
    key = uuid.uuid4().hex
    assign(db, alice, "BANK-1", number, idempotency_key=key)
    assign(db, alice, "BANK-1", number, idempotency_key=key)  # replayed: one attribution
    with pytest.raises(IdempotencyConflict):
        assign(db, alice, "BANK-1", number, idempotency_key=key, reason="another reason")
    with pytest.raises(InvalidInput, match="already belongs"):
        assign(db, alice, "BANK-1", number, expected_version=2)
    assert scalar(db, "SELECT count(*) FROM app.payment_attributions") == 1
    with pytest.raises(sa.exc.DBAPIError, match="immutable"), db.begin() as conn:
        conn.execute(sa.text("UPDATE app.payment_attributions SET dossier_number = :n"), {"n": dollars})
