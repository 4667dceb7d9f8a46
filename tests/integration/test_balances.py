"""Automatic balance charges at the service boundary, on real PostgreSQL, with the simulator provider
and the client's mails received by a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import factories as f
import pytest
import sqlalchemy as sa
from test_mail_outbox import Server

from backoffice.domain.clock import accounting_today
from backoffice.domain.errors import IdempotencyConflict, InvalidInput, NotFound, PermissionDenied, StaleVersion
from backoffice.domain.permissions import ROLES, Actor
from backoffice.mail.sender import deliver_due
from backoffice.providers import Capture, Decline, SimulatorProvider
from backoffice.services.balances import RetryPolicy, charge_due_balances, charge_now, item_charges
from backoffice.services.payments import record_payment
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor

DAY = accounting_today()
POLICY = RetryPolicy((1, 3, 7))


@pytest.fixture
def smtp() -> Iterator[Server]:
    server = Server()
    yield server
    server.stop()


def simulator(db: sa.Engine, rate: str = "0") -> SimulatorProvider:
    return SimulatorProvider(db, decline_rate=rate, seed=7)


def run(db: sa.Engine, day: date = DAY, rate: str = "0", provider: Any = None) -> Any:
    return charge_due_balances(db, day, provider or simulator(db, rate), policy=POLICY)


def booked(db: sa.Engine, balance: str = "700.00", due: date = DAY, **overrides: Any) -> str:
    """A dossier whose deposit (300.00, paid by an ingested card payment) is behind it and whose
    balance by card on file falls due on `due`."""
    number = f.dossier(
        db,
        schedule=[
            {"due_date": DAY - timedelta(days=40), "amount": "300.00", "kind": "deposit"},
            {"due_date": due, "amount": balance, "kind": "balance"},
        ],
        **overrides,
    )
    f.payment(db, number, "300.00", received_at=datetime.now(UTC) - timedelta(days=40))
    return number


def rows(db: sa.Engine, sql: str, **params: Any) -> list[sa.Row]:
    with db.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def scalar(db: sa.Engine, sql: str, **params: Any) -> Any:
    with db.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def attempts(db: sa.Engine, number: str) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in rows(
            db,
            """SELECT seq, attempt_no, attempted_on, trigger, amount, state, decline_reason
               FROM app.balance_charge_attempts WHERE dossier_number = :n ORDER BY seq, attempt_no""",
            n=number,
        )
    ]


def provider_calls(db: sa.Engine) -> int:
    """Charges the simulated acquirer really made (one per idempotency key)."""
    return scalar(db, "SELECT count(*) FROM app.provider_simulator_charges")


def events(db: sa.Engine, action: str) -> list[sa.Row]:
    sql = "SELECT actor, outcome, dossier_number, after, detail FROM audit.events WHERE action = :a ORDER BY id"
    return rows(db, sql, a=action)


def client_email(db: sa.Engine) -> str:
    return scalar(db, "SELECT client_email FROM app.dossiers")


def actor(db: sa.Engine, login: str, role: str = "agent") -> Actor:
    f.user(db, login, role)
    with UnitOfWork(db) as uow:
        return load_actor(uow, login)


def retry(db: sa.Engine, who: Actor, number: str, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "dossier_number": number,
        "seq": 2,
        "expected_version": scalar(db, "SELECT version FROM app.dossiers WHERE dossier_number = :n", n=number),
        "idempotency_key": uuid.uuid4().hex,
        "provider": simulator(db),
        **overrides,
    }
    with UnitOfWork(db) as uow:
        return charge_now(uow, who, **arguments)


def test_a_run_charges_the_due_balance_and_a_second_run_the_same_day_charges_nothing(db: sa.Engine) -> None:
    number = booked(db)
    report = run(db)
    assert (report.captured, report.declined, dict(report.captured_amounts)) == (1, 0, {"EUR": Decimal("700.00")})
    assert rows(
        db,
        """SELECT payment_id, amount, method, status, origin, provider, created_by FROM app.payments
           WHERE origin = 'automatic_charge'""",
    ) == [("AUTO-000001", Decimal("700.00"), "card", "captured", "automatic_charge", "simulator", "system")]
    assert scalar(db, "SELECT version FROM app.dossiers") == 2
    again = run(db)
    assert (again.captured, again.declined, again.settled) == (0, 0, 0)
    assert provider_calls(db) == 1
    assert scalar(db, "SELECT count(*) FROM app.payments WHERE origin = 'automatic_charge'") == 1
    assert [e.after["state"] for e in events(db, "charge_balance")] == ["captured"]
    with db.connect() as conn:
        assert item_charges(conn, number, POLICY)[2].state == "captured"


def test_only_card_on_file_items_of_confirmed_dossiers_due_by_the_day_are_charged(db: sa.Engine) -> None:
    charged = booked(db)
    booked(db, status="cancelled")
    booked(db, due=DAY + timedelta(days=1))
    transfer = f.dossier(db, schedule=[{"due_date": DAY, "amount": "100.00", "method": "transfer"}])
    report = run(db)
    assert report.captured == 1
    assert rows(db, "SELECT DISTINCT dossier_number FROM app.balance_charge_attempts") == [(charged,)]
    assert transfer not in {r.dossier_number for r in rows(db, "SELECT dossier_number FROM app.payments")}


def test_a_manual_payment_covering_the_balance_means_no_charge_and_a_partial_one_a_smaller_charge(
    db: sa.Engine,
) -> None:
    covered, partly = booked(db), booked(db)
    alice = actor(db, "alice")
    for number, amount in ((covered, "700.00"), (partly, "250.00")):
        with UnitOfWork(db) as uow:
            record_payment(
                uow,
                alice,
                dossier_number=number,
                method="cheque",
                amount=amount,
                expected_version=1,
                idempotency_key=uuid.uuid4().hex,
            )
    report = run(db)
    assert report.captured == 1
    assert attempts(db, covered) == []
    assert attempts(db, partly) == [(2, 1, DAY, "schedule", Decimal("450.00"), "captured", None)]


class ProcessKilled(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the service catches it."""


class DiesAfterCharging:
    """The real simulator charges, then the process dies before our outcome is committed."""

    def __init__(self, inner: SimulatorProvider) -> None:
        self.inner = inner
        self.name = inner.name

    def charge(self, **request: Any) -> Capture | Decline:
        self.inner.charge(**request)
        raise ProcessKilled


def test_a_crash_between_the_provider_and_our_commit_is_settled_without_a_second_charge(
    db: sa.Engine, database_url: str
) -> None:
    number = booked(db)
    # The provider cannot be reached: the attempt stays pending, nothing is charged.
    unreachable = sa.create_engine(sa.make_url(database_url).set(port=1))
    report = run(db, provider=SimulatorProvider(unreachable))
    assert (report.captured, report.unsettled) == (0, 1)
    assert attempts(db, number) == [(2, 1, DAY, "schedule", Decimal("700.00"), "pending", None)]
    assert provider_calls(db) == 0
    # Next run: the provider charges with the pending attempt's key, then the process dies.
    with pytest.raises(ProcessKilled):
        run(db, provider=DiesAfterCharging(simulator(db)))
    assert provider_calls(db) == 1
    assert attempts(db, number)[0][5] == "pending"
    assert scalar(db, "SELECT count(*) FROM app.payments WHERE origin = 'automatic_charge'") == 0
    # The run after asks the provider again with the same key: the first outcome, no new charge.
    report = run(db, provider=simulator(db))
    assert (report.settled, report.captured) == (1, 1)
    assert provider_calls(db) == 1
    assert attempts(db, number) == [(2, 1, DAY, "schedule", Decimal("700.00"), "captured", None)]
    assert scalar(db, "SELECT count(*) FROM app.payments WHERE origin = 'automatic_charge'") == 1


def test_a_declined_charge_is_retried_on_the_policy_days_then_given_up(db: sa.Engine) -> None:
    number = booked(db, balance="700.13")  # the simulator always declines .13, retryably
    given_up = {}
    for offset in range(0, 12):
        for _ in range(2):  # twice a day: the second run never tries again
            given_up[offset] = run(db, DAY + timedelta(days=offset)).given_up or given_up.get(offset, 0)
    tried = [(a[1], (a[2] - DAY).days, a[5], a[6]) for a in attempts(db, number)]
    assert tried == [
        (1, 0, "declined", "insufficient_funds"),
        (2, 1, "declined", "insufficient_funds"),
        (3, 3, "declined", "insufficient_funds"),
        (4, 7, "declined", "insufficient_funds"),
    ]
    assert [day for day, count in given_up.items() if count] == [7]
    # Each decline mailed the client once.
    mails = rows(db, "SELECT kind, to_address FROM app.outbox_mails")
    assert mails == [("balance_charge_failed", client_email(db))] * 4
    with db.connect() as conn:
        assert item_charges(conn, number, POLICY)[2].state == "given_up"


def test_a_final_decline_is_given_up_at_once_and_an_agent_can_retry_it(db: sa.Engine) -> None:
    number = booked(db, balance="700.14")  # card_expired: not retryable
    assert run(db).given_up == 1
    assert run(db, DAY + timedelta(days=1)).declined == 0
    with db.connect() as conn:
        charges = item_charges(conn, number, POLICY)[2]
    assert (charges.state, charges.retry_allowed) == ("given_up", True)
    alice = actor(db, "alice")
    attempt = retry(db, alice, number)  # the card was replaced meanwhile: still .14, still declined
    assert (attempt.trigger, attempt.requested_by, attempt.state, attempt.attempt_no) == (
        "agent",
        "alice",
        "declined",
        2,
    )
    assert scalar(db, "SELECT count(*) FROM app.outbox_mails") == 2


def test_an_agent_retry_of_a_declined_charge_captures_it(db: sa.Engine) -> None:
    number = booked(db)
    assert run(db, rate="1").declined == 1  # every random draw declines: do_not_honor
    alice = actor(db, "alice")
    attempt = retry(db, alice, number)
    assert (attempt.state, attempt.amount, attempt.payment_id) == ("captured", Decimal("700.00"), "AUTO-000002")
    assert rows(db, "SELECT created_by FROM app.payments WHERE origin = 'automatic_charge'") == [("alice",)]
    assert scalar(db, "SELECT version FROM app.dossiers") == 2
    assert [(e.actor, e.outcome) for e in events(db, "charge_balance_now")] == [("alice", "done")]
    assert [e.after["trigger"] for e in events(db, "charge_balance")] == ["schedule", "agent"]
    # Paid now: the next runs leave it alone.
    assert run(db, DAY + timedelta(days=1)).declined + run(db, DAY + timedelta(days=3)).captured == 0


def test_agent_retry_refusals_name_the_field_and_are_audited(db: sa.Engine) -> None:
    alice = actor(db, "alice")
    declined, paid = booked(db), booked(db)
    transfer = f.dossier(db, schedule=[{"due_date": DAY, "amount": "100.00", "method": "transfer"}])
    run(db, rate="1")  # declines both balances
    retry(db, alice, paid, provider=simulator(db))  # captured
    fresh = booked(db)  # after the run: never tried
    cases: list[tuple[type[Exception], str | None, dict[str, Any]]] = [
        (InvalidInput, "seq", {"dossier_number": declined, "seq": "two"}),
        (InvalidInput, "seq", {"dossier_number": declined, "seq": 0}),
        (InvalidInput, "dossier_number", {"dossier_number": " "}),
        (NotFound, None, {"dossier_number": "BK-1999-000001", "expected_version": 1}),
        (StaleVersion, None, {"dossier_number": declined, "expected_version": 99}),
        (InvalidInput, "seq", {"dossier_number": declined, "seq": 9}),
        (InvalidInput, "seq", {"dossier_number": fresh}),  # never declined: the daily run charges it
        (InvalidInput, "seq", {"dossier_number": paid}),  # already captured
        (InvalidInput, "seq", {"dossier_number": transfer, "seq": 1}),  # not a card on file
    ]
    for error, field, overrides in cases:
        with pytest.raises(error) as refused:
            retry(db, alice, **{"number": overrides.pop("dossier_number"), **overrides})
        assert getattr(refused.value, "field", None) == field, overrides
    assert [e.outcome for e in events(db, "charge_balance_now")] == ["done"] + ["refused"] * len(cases)
    assert attempts(db, fresh) == []


def test_only_a_holder_of_record_payment_may_retry_and_every_role_holding_it_may(db: sa.Engine) -> None:
    number = booked(db)
    run(db, rate="1")
    reader = Actor("reader", "agent", frozenset({"search_dossiers"}))
    with pytest.raises(PermissionDenied):
        retry(db, reader, number)
    assert [(e.actor, e.outcome, e.dossier_number) for e in events(db, "charge_balance_now")] == [
        ("reader", "refused", number)
    ]
    for role in ROLES:
        who = actor(db, f"user-{role}", role)
        assert who.can("record_payment")
        # Each allowed role gets past the permission check: a decline keeps the item retryable.
        assert retry(db, who, number, provider=simulator(db, "1")).state == "declined"
    assert provider_calls(db) == 1 + len(ROLES)


def test_the_same_key_returns_the_first_attempt_and_another_request_is_refused(db: sa.Engine) -> None:
    number = booked(db)
    run(db, rate="1")
    alice = actor(db, "alice")
    key = uuid.uuid4().hex
    first = retry(db, alice, number, idempotency_key=key, provider=simulator(db, "1"))
    again = retry(db, alice, number, idempotency_key=key, expected_version=1)
    assert (again.id, again.state) == (first.id, "declined")
    assert provider_calls(db) == 2
    with pytest.raises(IdempotencyConflict):
        retry(db, alice, number, idempotency_key=key, expected_version=2)


def test_the_client_is_mailed_in_their_language(db: sa.Engine, smtp: Server) -> None:
    fr = booked(db, balance="700.13", client_language="fr", client_first_name="Jeanne", client_email="jeanne@ex.fr")
    en = booked(db, balance="1250.13", client_language="en", client_first_name="John", client_email="john@ex.co.uk")
    run(db)
    smtp.start()
    deliver_due(db, "127.0.0.1", smtp.port, now=datetime.now(UTC) + timedelta(minutes=1))
    mails = {m["To"]: m for m in smtp.inbox.messages}
    assert sorted(mails) == ["jeanne@ex.fr", "john@ex.co.uk"]
    french, english = mails["jeanne@ex.fr"], mails["john@ex.co.uk"]
    assert french["Subject"] == f"Paiement du solde refusé (dossier {fr})"
    body = french.get_body(("plain",)).get_content()
    assert "Bonjour Jeanne" in body and "700,13\xa0€" in body
    assert f"prévu le {DAY.day} " in body
    assert english["Subject"] == f"Balance payment declined (booking {en})"
    body = english.get_body(("plain",)).get_content()
    assert "Dear John" in body and "€1,250.13" in body
    # A second run the same day mails nobody again.
    run(db)
    assert scalar(db, "SELECT count(*) FROM app.outbox_mails") == 2


def test_the_database_keeps_decided_attempts_and_one_capture_per_item(db: sa.Engine) -> None:
    number = booked(db)
    run(db)
    other = f.payment(db, number, "700.00")
    for statement in (
        "UPDATE app.balance_charge_attempts SET amount = 1",
        "UPDATE app.balance_charge_attempts SET state = 'declined'",
        "DELETE FROM app.balance_charge_attempts",
    ):
        with pytest.raises(sa.exc.IntegrityError, match="decided once"), db.begin() as conn:
            conn.execute(sa.text(statement))
    with pytest.raises(sa.exc.IntegrityError, match="one_capture"), db.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.balance_charge_attempts (dossier_number, seq, attempt_no, attempted_on, trigger,
                       requested_by, amount, currency, provider, provider_key, state, provider_reference, payment_id,
                       decided_at)
                   SELECT dossier_number, seq, 2, attempted_on, trigger, requested_by, amount, currency, provider,
                          'other-key', 'captured', 'X', :other, now()
                   FROM app.balance_charge_attempts WHERE dossier_number = :n"""
            ),
            {"n": number, "other": other},
        )
