"""Refunds at the service boundary on real PostgreSQL: limits, concurrency, second-person approval,
the original method, rights, bad input, idempotency and versions."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import factories as f
import pytest
import sqlalchemy as sa

from backoffice.config import get_settings
from backoffice.domain.errors import (
    DomainError,
    IdempotencyConflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StaleVersion,
)
from backoffice.domain.permissions import Actor
from backoffice.services.refunds import Refund, SecondPersonRequired, approve_refund, refuse_refund, request_refund
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor


def actor(engine: sa.Engine, login: str, role: str) -> Actor:
    f.user(engine, login, role)
    with UnitOfWork(engine) as uow:
        return load_actor(uow, login)


@pytest.fixture
def people(db: sa.Engine) -> dict[str, Actor]:
    return {
        "alice": actor(db, "alice", "agent"),
        "sam": actor(db, "sam", "senior_agent"),
        "carla": actor(db, "carla", "accountant"),
        "dora": actor(db, "dora", "accountant"),
    }


@pytest.fixture
def threshold(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("BACKOFFICE_REFUND_APPROVAL_THRESHOLD", "100.00")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def version_of(db: sa.Engine, number: str) -> int:
    with db.connect() as conn:
        return conn.execute(
            sa.text("SELECT version FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()


def refund(db: sa.Engine, who: Actor, number: str, payment_id: str, amount: str, **overrides: Any) -> Refund:
    arguments: dict[str, Any] = {
        "dossier_number": number,
        "payment_id": payment_id,
        "amount": amount,
        "reason": "hotel closed, client sent home",
        "idempotency_key": uuid.uuid4().hex,
        **overrides,
    }
    if "expected_version" not in arguments:
        arguments["expected_version"] = version_of(db, number)
    with UnitOfWork(db) as uow:
        return request_refund(uow, who, **arguments)


def decide(db: sa.Engine, who: Actor, refund_id: int, approve: bool = True, **overrides: Any) -> Refund:
    arguments: dict[str, Any] = {"refund_id": refund_id, "idempotency_key": uuid.uuid4().hex, **overrides}
    if "expected_version" not in arguments:
        with db.connect() as conn:
            number = conn.execute(sa.text("SELECT dossier_number FROM app.refunds WHERE id = :i"), {"i": refund_id})
            arguments["expected_version"] = version_of(db, number.scalar_one())
    with UnitOfWork(db) as uow:
        if approve:
            return approve_refund(uow, who, **arguments)
        return refuse_refund(uow, who, **{"reason": "not justified", **arguments})


def refund_rows(db: sa.Engine) -> list[sa.Row]:
    with db.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    """SELECT payment_id, dossier_number, method, amount, status, origin, provider,
                              provider_reference, refund_of, created_by
                       FROM app.payments WHERE origin = 'refund' ORDER BY payment_id"""
                )
            )
        )


def test_the_exact_limit_is_allowed_one_cent_more_is_refused(db: sa.Engine, people: dict[str, Actor]) -> None:
    number = f.dossier(db)
    card = f.payment(db, number, "600.00", payment_id="CARD-1")
    f.payment(db, number, "-100.00", "chargeback", payment_id="CB-1")  # paid net: 500.00
    f.payment(db, number, "900.00", "failed", payment_id="CARD-2")  # moves no money
    with pytest.raises(InvalidInput) as refused:
        refund(db, people["sam"], number, card, "500.01")
    assert refused.value.field == "amount" and "500.00 EUR" in refused.value.problem
    done = refund(db, people["sam"], number, card, "200.00")
    assert (done.state, done.amount, done.refund_payment_id) == ("executed", Decimal("200.00"), f"RFD-{done.id:06d}")
    with pytest.raises(InvalidInput, match=r"the 300\.00 EUR"):
        refund(db, people["sam"], number, card, "300.01")  # net of the earlier refund
    refund(db, people["sam"], number, card, "300.00")
    with pytest.raises(InvalidInput, match=r"the 0\.00 EUR"):
        refund(db, people["sam"], number, card, "0.01")
    assert sum(r.amount for r in refund_rows(db)) == Decimal("-500.00")


def test_a_payment_is_never_refunded_beyond_itself(db: sa.Engine, people: dict[str, Actor]) -> None:
    number = f.dossier(db)
    card = f.payment(db, number, "300.00", payment_id="CARD-1")
    f.payment(db, number, "200.00", payment_id="BANK-1", method="transfer", provider="bank")
    with pytest.raises(InvalidInput, match=r"the 300\.00 EUR"):
        refund(db, people["sam"], number, card, "300.01")
    refund(db, people["sam"], number, card, "300.00")
    refund(db, people["sam"], number, "BANK-1", "200.00")


def test_by_the_original_method_where_possible(db: sa.Engine, people: dict[str, Actor]) -> None:
    number = f.dossier(db)
    f.payment(db, number, "100.00", payment_id="CARD-1", provider="adyen", provider_reference="PSP-77")
    f.payment(db, number, "100.00", payment_id="CASH-1", method="cash", provider=None, provider_reference=None)
    f.payment(db, number, "100.00", payment_id="ANCV-1", method="holiday_voucher", provider="ancv")
    for payment_id in ("CARD-1", "CASH-1", "ANCV-1"):
        refund(db, people["sam"], number, payment_id, "40.00")
    rows = {r.refund_of: r for r in refund_rows(db)}
    assert (rows["CARD-1"].method, rows["CARD-1"].provider, rows["CARD-1"].provider_reference) == (
        "card",
        "adyen",
        "PSP-77",
    )
    assert {(rows[p].method, rows[p].provider) for p in ("CASH-1", "ANCV-1")} == {("transfer", "bank")}
    assert {(r.amount, r.status, r.created_by, r.dossier_number) for r in rows.values()} == {
        (Decimal("-40.00"), "refunded", "sam", number)
    }


def test_concurrent_refunds_that_together_exceed_what_was_paid_only_one_passes(
    db: sa.Engine, people: dict[str, Actor]
) -> None:
    number = f.dossier(db)
    f.payment(db, number, "500.00", payment_id="CARD-1")
    f.payment(db, number, "500.00", payment_id="BANK-1", method="transfer")
    attempts = 4
    start = threading.Barrier(attempts)
    outcomes: list[object] = []

    def attempt(payment_id: str) -> None:
        start.wait()
        try:
            outcomes.append(refund(db, people["sam"], number, payment_id, "400.00", expected_version=1))
        except DomainError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=attempt, args=(p,)) for p in ("CARD-1", "BANK-1", "CARD-1", "BANK-1")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    passed = [o for o in outcomes if isinstance(o, Refund)]
    assert len(passed) == 1, outcomes
    assert all(isinstance(o, StaleVersion | InvalidInput) for o in outcomes if o not in passed)
    assert sum(r.amount for r in refund_rows(db)) == Decimal("-400.00")
    assert version_of(db, number) == 2


def test_concurrent_refunds_at_the_current_version_never_exceed_what_was_paid(
    db: sa.Engine, people: dict[str, Actor]
) -> None:
    """Each thread re-reads the version and retries when it is stale: whatever the interleaving, what is
    refunded stays within what was paid, on the dossier and on each payment."""
    number = f.dossier(db)
    f.payment(db, number, "500.00", payment_id="CARD-1")
    f.payment(db, number, "500.00", payment_id="BANK-1", method="transfer")
    start = threading.Barrier(6)
    outcomes: list[object] = []

    def attempt(payment_id: str) -> None:
        start.wait()
        for _ in range(5):
            try:
                outcomes.append(refund(db, people["sam"], number, payment_id, "150.00"))
                return
            except StaleVersion:
                continue
            except InvalidInput as error:
                outcomes.append(error)
                return

    threads = [threading.Thread(target=attempt, args=(p,)) for p in ("CARD-1", "BANK-1") * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refunded = -sum(r.amount for r in refund_rows(db))
    assert refunded <= Decimal("1000.00")
    per_payment = {p: -sum(r.amount for r in refund_rows(db) if r.refund_of == p) for p in ("CARD-1", "BANK-1")}
    assert all(v <= Decimal("500.00") for v in per_payment.values()), per_payment


def test_above_the_threshold_a_second_person_approves(db: sa.Engine, people: dict[str, Actor], threshold: None) -> None:
    number = f.dossier(db)
    f.payment(db, number, "500.00", payment_id="CARD-1")
    at_threshold = refund(db, people["carla"], number, "CARD-1", "100.00")
    assert at_threshold.state == "executed" and at_threshold.decided_by is None
    pending = refund(db, people["carla"], number, "CARD-1", "100.01")
    assert (pending.state, pending.refund_payment_id) == ("pending_approval", None)
    assert len(refund_rows(db)) == 1  # no money moved
    with pytest.raises(InvalidInput, match=r"the 299\.99 EUR"):  # the pending amount is reserved
        refund(db, people["sam"], number, "CARD-1", "300.00")
    with pytest.raises(SecondPersonRequired):
        decide(db, people["carla"], pending.id)
    with pytest.raises(PermissionDenied):
        decide(db, people["sam"], pending.id)  # senior agents may refund, not approve
    approved = decide(db, people["dora"], pending.id, note="checked with the hotel")
    assert (approved.state, approved.decided_by, approved.decision_note) == (
        "executed",
        "dora",
        "checked with the hotel",
    )
    assert [r.created_by for r in refund_rows(db)] == ["carla", "dora"]
    with pytest.raises(InvalidInput, match="already executed"):
        decide(db, people["dora"], pending.id, approve=False)
    later = refund(db, people["sam"], number, "CARD-1", "150.00")
    with pytest.raises(InvalidInput) as no_reason:
        decide(db, people["dora"], later.id, approve=False, reason=" ")
    assert no_reason.value.field == "reason"
    refused = decide(db, people["dora"], later.id, approve=False)
    assert (refused.state, refused.decision_note, refused.refund_payment_id) == ("refused", "not justified", None)
    assert len(refund_rows(db)) == 2
    with db.connect() as conn:
        actions = conn.execute(
            sa.text("SELECT action, outcome, actor FROM audit.events WHERE dossier_number = :n ORDER BY id"),
            {"n": number},
        ).all()
    assert [tuple(a) for a in actions if a.outcome == "done"] == [
        ("refund", "done", "carla"),
        ("refund", "done", "carla"),
        ("approve_refund", "done", "dora"),
        ("refund", "done", "sam"),
        ("refuse_refund", "done", "dora"),
    ]
    assert {(a.action, a.actor) for a in actions if a.outcome == "refused"} == {
        ("refund", "sam"),
        ("approve_refund", "carla"),
        ("approve_refund", "sam"),
        ("refuse_refund", "dora"),
    }


def test_an_approval_checks_the_limit_again(db: sa.Engine, people: dict[str, Actor], threshold: None) -> None:
    number = f.dossier(db)
    f.payment(db, number, "300.00", payment_id="CARD-1")
    pending = refund(db, people["carla"], number, "CARD-1", "250.00")
    f.payment(db, number, "-100.00", "chargeback", payment_id="CB-1")  # the bank took some back meanwhile
    with pytest.raises(InvalidInput, match=r"the 200\.00 EUR"):
        decide(db, people["dora"], pending.id)
    assert refund_rows(db) == []


def test_only_the_refund_permission_may_refund(db: sa.Engine) -> None:
    number = f.dossier(db)
    f.payment(db, number, "100.00", payment_id="CARD-1")
    for login, role in (("sam", "senior_agent"), ("carla", "accountant"), ("adam", "admin")):
        assert refund(db, actor(db, login, role), number, "CARD-1", "10.00").state == "executed"
    with pytest.raises(PermissionDenied):
        refund(db, actor(db, "alice", "agent"), number, "CARD-1", "10.00")
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.refunds")).scalar() == 3
        assert conn.execute(
            sa.text("SELECT actor, dossier_number FROM audit.events WHERE action = 'refund' AND outcome = 'refused'")
        ).all() == [("alice", number)]


def test_bad_input_is_refused_naming_the_field(db: sa.Engine, people: dict[str, Actor]) -> None:
    number = f.dossier(db)
    other = f.dossier(db)
    f.payment(db, number, "100.00", payment_id="CARD-1")
    f.payment(db, other, "100.00", payment_id="CARD-404")
    f.payment(db, number, "100.00", "failed", payment_id="FAILED-1")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"amount": 10.0}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-10.00"}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"reason": ""}, "reason"),
        ({"payment_id": ""}, "payment_id"),
        ({"payment_id": "CARD-404"}, "payment_id"),  # not a payment of this dossier
        ({"payment_id": "FAILED-1"}, "payment_id"),  # moved no money
        ({"dossier_number": None}, "dossier_number"),
    ]
    for overrides, field in cases:
        arguments = {"payment_id": "CARD-1", "amount": "10.00", "expected_version": 1, **overrides}
        with pytest.raises(InvalidInput) as refused:
            refund(db, people["sam"], number, **arguments)
        assert refused.value.field == field, overrides
    assert refund_rows(db) == [] and version_of(db, number) == 1
    with db.connect() as conn:
        refusals = conn.execute(sa.text("SELECT count(*) FROM audit.events WHERE outcome = 'refused'")).scalar()
    assert refusals == len(cases)


def test_idempotency_stale_version_and_unknown_dossier(db: sa.Engine, people: dict[str, Actor]) -> None:
    number = f.dossier(db)
    f.payment(db, number, "100.00", payment_id="CARD-1")
    key = uuid.uuid4().hex
    first = refund(db, people["sam"], number, "CARD-1", "60.00", idempotency_key=key, expected_version=1)
    assert refund(db, people["sam"], number, "CARD-1", "60.00", idempotency_key=key, expected_version=1) == first
    with pytest.raises(IdempotencyConflict):
        refund(db, people["sam"], number, "CARD-1", "40.00", idempotency_key=key, expected_version=1)
    with pytest.raises(StaleVersion):
        refund(db, people["sam"], number, "CARD-1", "10.00", expected_version=1)
    with pytest.raises(NotFound):
        refund(db, people["sam"], "BK-1999-000001", "CARD-1", "10.00", expected_version=1)
    assert len(refund_rows(db)) == 1 and version_of(db, number) == 2


def test_the_database_keeps_refund_decisions_final(db: sa.Engine, people: dict[str, Actor]) -> None:
    number = f.dossier(db)
    f.payment(db, number, "100.00", payment_id="CARD-1")
    done = refund(db, people["sam"], number, "CARD-1", "60.00")
    for statement in (
        "UPDATE app.refunds SET amount = 1 WHERE id = :i",
        "UPDATE app.refunds SET state = 'refused', decided_by = 'x', refund_payment_id = NULL WHERE id = :i",
        "DELETE FROM app.refunds WHERE id = :i",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="only approved or refused once"), db.begin() as conn:
            conn.execute(sa.text(statement), {"i": done.id})
    with pytest.raises(sa.exc.DBAPIError, match="immutable"), db.begin() as conn:
        conn.execute(sa.text("DELETE FROM app.payments WHERE origin = 'refund'"))
