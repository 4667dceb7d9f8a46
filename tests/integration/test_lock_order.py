"""Lock order on a dossier: the dossier's row first, then its arrears (migration 0024).

Migration 0023's arrears triggers took a per-dossier advisory lock and rewrote app.dossier_arrears
as soon as a payment was inserted. `record_payment` and the balance charge's settlement insert
their payment first and lock the dossier's row when they bump its version, after; `request_refund`
locks the row first (`FOR UPDATE`) and inserts its payment-out after. Interleaved, each held what
the other waited for: a deadlock (40P01), refused as "retry".

The interleaving is forced with the real services on separate sessions: a refund locks the
dossier's row and is held back right after (a third session holds app.refunds, which the refund
reads next); the other action is started and left to wait (checked in pg_stat_activity); then the
refund is let go and inserts its payment-out. Under 0023 it then waited for the other's advisory
lock while the other waited for its row: PostgreSQL aborted one (both tests failed so). Since 0024
the trigger takes the dossier's row before anything else, so the other action waits before
holding anything and goes on once the refund committed.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import factories as f
import pytest
import sqlalchemy as sa

from backoffice.config import get_settings
from backoffice.domain.clock import accounting_today
from backoffice.domain.errors import ConcurrentConflict, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.providers import SimulatorProvider
from backoffice.services import balances, payments, refunds
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor


@pytest.fixture
def no_refund_approval(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("BACKOFFICE_REFUND_APPROVAL_THRESHOLD", "1000000.00")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _actor(db: sa.Engine, login: str) -> Actor:
    f.user(db, login, "senior_agent")
    with UnitOfWork(db) as uow:
        return load_actor(uow, login)


def _version(db: sa.Engine, number: str) -> int:
    with db.connect() as conn:
        return conn.execute(
            sa.text("SELECT version FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()


def _waiting(db: sa.Engine) -> int:
    """Sessions of this database waiting for a lock (the other helpers' databases do not count)."""
    with db.connect() as conn:
        return conn.execute(
            sa.text(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"""
            )
        ).scalar_one()


def _until_waiting(db: sa.Engine, count: int, threads: list[threading.Thread]) -> None:
    deadline = time.monotonic() + 30
    while _waiting(db) < count:
        assert all(t.is_alive() for t in threads), "an action ended instead of waiting"
        assert time.monotonic() < deadline, f"fewer than {count} sessions ever waited"
        time.sleep(0.02)


def _in_thread(outcome: dict[str, Any], name: str, action: Callable[[], Any]) -> threading.Thread:
    def run() -> None:
        try:
            outcome[name] = action()
        except Exception as error:  # the outcome is what the test checks
            outcome[name] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _interleave(db: sa.Engine, number: str, paid: str, version: int, second: Callable[[], Any]) -> dict[str, Any]:
    """A refund of `paid` that holds the dossier's row and is held back there; `second` started and
    left to wait; then the refund let go. Returns what each one returned or raised."""
    refunder = _actor(db, "refunder")
    outcome: dict[str, Any] = {}
    gate = db.connect()
    gate.begin()
    # The refund reads app.refunds right after locking the dossier row: it stops there.
    gate.execute(sa.text("LOCK TABLE app.refunds IN ACCESS EXCLUSIVE MODE"))
    try:
        refund = _in_thread(outcome, "refund", lambda: _refund(db, refunder, number, paid, version))
        _until_waiting(db, 1, [refund])
        other = _in_thread(outcome, "second", second)
        _until_waiting(db, 2, [refund, other])  # it waits on the refund's transaction
    finally:
        gate.rollback()  # the refund goes on: it inserts its payment-out, then bumps the version
        gate.close()
    refund.join(60)
    other.join(60)
    assert not refund.is_alive() and not other.is_alive()
    assert not isinstance(outcome["refund"], ConcurrentConflict), "deadlock: the refund was aborted"
    assert not isinstance(outcome["second"], ConcurrentConflict), "deadlock: the other action was aborted"
    assert isinstance(outcome["refund"], refunds.Refund), outcome["refund"]
    assert outcome["refund"].state == "executed"
    return outcome


def _arrears_agree(db: sa.Engine, number: str) -> None:
    """The arrears row the triggers kept equals a recomputation from what was committed."""
    with db.connect() as conn:
        kept = conn.execute(
            sa.text("SELECT arrears::text FROM app.dossier_arrears WHERE dossier_number = :n"), {"n": number}
        ).scalar()
    with db.begin() as conn:
        conn.execute(sa.text("SELECT app.refresh_arrears(ARRAY[:n])"), {"n": number})
        recomputed = conn.execute(
            sa.text("SELECT arrears::text FROM app.dossier_arrears WHERE dossier_number = :n"), {"n": number}
        ).scalar()
    assert kept == recomputed


def _paid(db: sa.Engine, number: str) -> Decimal:
    with db.connect() as conn:
        return conn.execute(
            sa.text("SELECT sum(amount) FROM app.dossier_payments WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()


def test_a_payment_meeting_a_refund_on_the_same_dossier_waits_instead_of_deadlocking(
    db: sa.Engine, no_refund_approval: None
) -> None:
    cashier = _actor(db, "cashier")
    number = f.dossier(db)
    paid = f.payment(db, number, "300.00")
    version = _version(db, number)

    def record() -> str:
        with UnitOfWork(db) as uow:
            return payments.record_payment(
                uow, cashier, dossier_number=number, method="transfer", amount="80.00", reference="VIR-LOCK",
                expected_version=version, idempotency_key=uuid.uuid4().hex,
            )  # fmt: skip

    outcome = _interleave(db, number, paid, version, record)

    # The refund moved the dossier on: the payment, made against the version before, is refused.
    assert isinstance(outcome["second"], StaleVersion), outcome["second"]
    assert _version(db, number) == version + 1
    assert _paid(db, number) == Decimal("250.00")
    _arrears_agree(db, number)


def test_an_automatic_charge_settled_while_a_refund_holds_the_dossier_waits_instead_of_deadlocking(
    db: sa.Engine, no_refund_approval: None
) -> None:
    """The daily run settles a charge left pending by a crash: it inserts the payment, then bumps
    the version, with no lock taken before; an agent refunds on the same dossier meanwhile."""
    today = accounting_today()
    number = f.dossier(
        db,
        schedule=[
            {"due_date": today - timedelta(days=40), "amount": "300.00", "kind": "deposit"},
            {"due_date": today, "amount": "700.00", "kind": "balance"},
        ],
    )
    paid = f.payment(db, number, "300.00")
    policy = balances.RetryPolicy((1, 3, 7))
    with db.begin() as conn:  # step 1 of a charge committed, then the run died
        dossier, item = balances._next_item(conn, number, today, policy)
        balances._start(conn, dossier, item.seq, item.remaining, today, "schedule", "system", "simulator")
    version = _version(db, number)
    provider = SimulatorProvider(db, decline_rate="0", seed=7)

    outcome = _interleave(
        db, number, paid, version, lambda: balances.charge_due_balances(db, today, provider, policy=policy)
    )

    report = outcome["second"]
    assert isinstance(report, balances.ChargeReport), report
    assert (report.settled, report.captured) == (1, 1)
    assert _version(db, number) == version + 2  # the refund and the charge, each once
    assert _paid(db, number) == Decimal("950.00")
    _arrears_agree(db, number)


def _refund(db: sa.Engine, actor: Actor, number: str, paid: str, version: int) -> refunds.Refund:
    with UnitOfWork(db) as uow:
        return refunds.request_refund(
            uow, actor, dossier_number=number, payment_id=paid, amount="50.00", reason="geste commercial",
            expected_version=version, idempotency_key=uuid.uuid4().hex,
        )  # fmt: skip
