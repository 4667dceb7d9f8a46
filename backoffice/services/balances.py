"""Automatic balances: charge the cards on file whose schedule items fall due, retry the declines.

Every charge is an attempt row (app.balance_charge_attempts, migration 0014) written in three
steps, so a crash anywhere never charges twice:
1. the attempt is committed in state `pending`, with the idempotency key the provider will get
   (`bal-<dossier>-<seq>-<attempt>-<day>`), the dossier row locked while the amount is decided;
2. the provider is called, outside any transaction;
3. the outcome is committed: `captured` (with an app.payments row, origin `automatic_charge`,
   and a new dossier version) or `declined` (with the client's mail, once).
A run first settles the attempts left `pending` (a crash, or a provider that did not answer
between 2 and 3) by calling the provider again with the same key: it returns the first outcome
and charges nothing more. The database keeps at most one pending and one captured attempt per
item, and a decided attempt never changes.

What is due is what `payments.schedule_states` says is left to pay on an item: the one
definition the Payments tab uses too, so a manual payment covering the balance means no charge
and a partial one means a smaller charge.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from babel.dates import format_date
from babel.numbers import format_currency
from sqlalchemy.engine import Connection, Engine

from backoffice.config import get_settings
from backoffice.domain.clock import accounting_today
from backoffice.domain.errors import DomainError, InvalidInput, NotFound, StaleVersion
from backoffice.domain.permissions import SYSTEM, Actor
from backoffice.mail import outbox
from backoffice.mail.templates import language_for
from backoffice.providers import Capture, Decline, PaymentProvider, SimulatorProvider
from backoffice.services import audit, idempotency
from backoffice.services.payments import DOSSIER_PAYMENTS, MONEY_MOVING, dossier_number_of, schedule_states
from backoffice.services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

CHARGE = "charge_balance"  # an attempt's outcome, whoever started it
CHARGE_NOW = "charge_balance_now"  # an agent's "retry the charge now"
PERMISSION = "record_payment"
_BABEL_LOCALES = {"fr": "fr_FR", "en": "en_GB"}


class ChargeUnsettled(DomainError):
    """The provider did not answer: the attempt stays pending and the next daily run settles it."""


@dataclass(frozen=True)
class RetryPolicy:
    """A declined scheduled charge is tried again `retry_days` after the first decline (each
    number once, in order), then given up; a decline the provider calls final is given up at once."""

    retry_days: tuple[int, ...] = (1, 3, 7)

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        """BACKOFFICE_BALANCE_RETRY_DAYS, e.g. [1, 3, 7]."""
        return cls(tuple(get_settings().balance_retry_days))


@dataclass(frozen=True)
class Attempt:
    id: int
    dossier_number: str
    seq: int
    attempt_no: int
    attempted_on: date
    trigger: str  # schedule | agent
    requested_by: str
    amount: Decimal
    currency: str
    provider: str
    provider_key: str
    state: str  # pending | captured | declined
    provider_reference: str | None
    decline_reason: str | None
    retryable: bool | None
    payment_id: str | None
    mail_id: int | None
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True)
class ItemCharges:
    """The automatic charges of one schedule item and where they stand."""

    seq: int
    attempts: tuple[Attempt, ...]
    # captured | pending | retrying (next_try set) | given_up
    state: str
    next_try: date | None

    @property
    def retry_allowed(self) -> bool:
        """An agent may retry by hand once the card was declined and nothing is pending or captured."""
        return self.state in ("retrying", "given_up")


@dataclass
class ChargeReport:
    day: date
    captured: int = 0
    declined: int = 0
    given_up: int = 0  # declined by their last allowed attempt in this run
    settled: int = 0  # pending attempts of an earlier run settled in this one
    unsettled: int = 0  # the provider did not answer: left pending for the next run
    # By currency.
    captured_amounts: defaultdict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    declined_amounts: defaultdict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    attempt_ids: list[int] = field(default_factory=list)

    def line(self) -> str:
        def amounts(totals: dict[str, Decimal]) -> str:
            return ", ".join(f"{amount} {currency}" for currency, amount in sorted(totals.items())) or "0"

        return (
            f"balances: {self.captured} charged ({amounts(self.captured_amounts)}), {self.declined} declined"
            f" ({amounts(self.declined_amounts)}), {self.given_up} given up, {self.unsettled} left pending"
        )


_ATTEMPT_COLUMNS = ", ".join(Attempt.__dataclass_fields__)


def _attempts(conn: Connection, number: str, seq: int | None = None) -> list[Attempt]:
    rows = conn.execute(
        sa.text(
            f"""SELECT {_ATTEMPT_COLUMNS} FROM app.balance_charge_attempts
                WHERE dossier_number = :number AND (CAST(:seq AS integer) IS NULL OR seq = :seq)
                ORDER BY seq, attempt_no"""
        ),
        {"number": number, "seq": seq},
    ).mappings()
    return [Attempt(**r) for r in rows]


def _standing(history: list[Attempt], policy: RetryPolicy) -> tuple[str, date | None]:
    """(state, first day the daily run may try) of an item from its attempts, oldest first."""
    if any(a.state == "captured" for a in history):
        return "captured", None
    if any(a.state == "pending" for a in history):
        return "pending", None
    if not history:
        return "due", None
    if not history[-1].retryable:
        return "given_up", None
    scheduled = [a for a in history if a.trigger == "schedule"]
    if not scheduled:  # only an agent tried: the daily run starts its own count
        return "retrying", history[-1].attempted_on + timedelta(days=1)
    if len(scheduled) > len(policy.retry_days):
        return "given_up", None
    next_try = scheduled[0].attempted_on + timedelta(days=policy.retry_days[len(scheduled) - 1])
    # Never two attempts on one day, whoever made the last one.
    return "retrying", max(next_try, history[-1].attempted_on + timedelta(days=1))


def item_charges(conn: Connection, dossier_number: str, policy: RetryPolicy | None = None) -> dict[int, ItemCharges]:
    """The items of a dossier that have charge attempts, by seq (for the Payments tab)."""
    policy = policy or RetryPolicy.from_settings()
    by_seq: dict[int, list[Attempt]] = {}
    for attempt in _attempts(conn, dossier_number):
        by_seq.setdefault(attempt.seq, []).append(attempt)
    out = {}
    for seq, history in by_seq.items():
        state, next_try = _standing(history, policy)
        out[seq] = ItemCharges(seq, tuple(history), state, next_try)
    return out


def _due_items(conn: Connection, number: str, today: date) -> tuple[Any, list[Any]]:
    """The dossier row, locked, and the states of its schedule items (payments.schedule_states)."""
    dossier = conn.execute(
        sa.text(
            """SELECT dossier_number, status, currency, version, client_first_name, client_last_name,
                      client_email, client_language
               FROM app.dossiers WHERE dossier_number = :n FOR UPDATE"""
        ),
        {"n": number},
    ).first()
    if dossier is None:
        return None, []
    schedule = conn.execute(
        sa.text("SELECT seq, due_date, amount, kind, method FROM app.payment_schedule WHERE dossier_number = :number"),
        {"number": number},
    ).all()
    paid = conn.execute(
        sa.text(f"SELECT coalesce(sum(p.amount), 0) FROM {DOSSIER_PAYMENTS} p WHERE p.status = ANY(:moving)"),
        {"number": number, "moving": list(MONEY_MOVING)},
    ).scalar_one()
    return dossier, schedule_states(schedule, Decimal(paid), today)


_START = sa.text(
    """INSERT INTO app.balance_charge_attempts (dossier_number, seq, attempt_no, attempted_on, trigger, requested_by,
           amount, currency, provider, provider_key, state)
       SELECT :number, :seq, n.no, :day, :trigger, :actor, :amount, :currency, :provider,
              'bal-' || :number || '-' || :seq || '-' || n.no || '-' || to_char(CAST(:day AS date), 'YYYYMMDD'),
              'pending'
       FROM (SELECT coalesce(max(attempt_no), 0) + 1 AS no FROM app.balance_charge_attempts
             WHERE dossier_number = :number AND seq = :seq) n
       RETURNING id"""
)


def _start(
    conn: Connection, dossier: Any, seq: int, amount: Decimal, day: date, trigger: str, actor: str, provider: str
) -> Attempt:
    attempt_id = conn.execute(
        _START,
        {
            "number": dossier.dossier_number,
            "seq": seq,
            "day": day,
            "trigger": trigger,
            "actor": actor,
            "amount": amount,
            "currency": dossier.currency,
            "provider": provider,
        },
    ).scalar_one()
    return next(a for a in _attempts(conn, dossier.dossier_number, seq) if a.id == attempt_id)


def _mail(conn: Connection, attempt: Attempt, actor: str) -> tuple[int | None, str | None]:
    """Queue the client's mail about a declined charge: (mail id, or None and why not)."""
    client = conn.execute(
        sa.text(
            """SELECT d.client_first_name, d.client_last_name, d.client_email, d.client_language, s.due_date
               FROM app.dossiers d
               LEFT JOIN app.payment_schedule s ON s.dossier_number = d.dossier_number AND s.seq = :seq
               WHERE d.dossier_number = :n"""
        ),
        {"n": attempt.dossier_number, "seq": attempt.seq},
    ).one()
    if not client.client_email:
        return None, "no e-mail address"
    try:
        outbox.validate_address(client.client_email)
    except InvalidInput as error:
        return None, error.problem
    language = language_for(client.client_language)
    locale = _BABEL_LOCALES[language]
    context = {
        "client_name": f"{client.client_first_name} {client.client_last_name}",
        "dossier_number": attempt.dossier_number,
        "amount": format_currency(attempt.amount, attempt.currency, locale=locale),
        "due_date": format_date(client.due_date or attempt.attempted_on, format="long", locale=locale),
    }
    mail_id = outbox.enqueue(
        conn,
        kind="balance_charge_failed",
        language=language,
        to_address=client.client_email,
        context=context,
        dossier_number=attempt.dossier_number,
        actor=actor,
    )
    return mail_id, None


_CAPTURED_PAYMENT = sa.text(
    """INSERT INTO app.payments (payment_id, dossier_number, received_at, method, amount, currency, status,
           provider, provider_reference, payer_name, origin, created_by)
       SELECT 'AUTO-' || lpad(a.id::text, 6, '0'), a.dossier_number, :received_at, 'card', a.amount, a.currency,
              'captured', a.provider, :reference, d.client_first_name || ' ' || d.client_last_name,
              'automatic_charge', a.requested_by
       FROM app.balance_charge_attempts a JOIN app.dossiers d USING (dossier_number)
       WHERE a.id = :id
       RETURNING payment_id"""
)


def _settle(conn: Connection, attempt: Attempt, outcome: Capture | Decline, actor: str, policy: RetryPolicy) -> Attempt:
    """Record the provider's outcome of a pending attempt (in the caller's transaction); returns
    the attempt as decided. If someone settled it meanwhile, returns it as they did."""
    pending = conn.execute(
        sa.text("SELECT id FROM app.balance_charge_attempts WHERE id = :id AND state = 'pending' FOR UPDATE"),
        {"id": attempt.id},
    ).first()
    if pending is None:
        return next(a for a in _attempts(conn, attempt.dossier_number, attempt.seq) if a.id == attempt.id)
    after: dict[str, Any] = {"attempt_id": attempt.id, "seq": attempt.seq, "attempt_no": attempt.attempt_no}
    after |= {"amount": attempt.amount, "currency": attempt.currency, "trigger": attempt.trigger}
    before: dict[str, Any] = {}
    if isinstance(outcome, Capture):
        # A charge of today carries the moment it was recorded; one of a past day (a catch-up run) noon UTC.
        day = attempt.attempted_on
        received_at = datetime.now(UTC) if day == accounting_today() else datetime.combine(day, time(12), tzinfo=UTC)
        payment_id = conn.execute(
            _CAPTURED_PAYMENT, {"id": attempt.id, "received_at": received_at, "reference": outcome.reference}
        ).scalar_one()
        conn.execute(
            sa.text(
                """UPDATE app.balance_charge_attempts
                   SET state = 'captured', payment_id = :payment, provider_reference = :reference, decided_at = now()
                   WHERE id = :id"""
            ),
            {"id": attempt.id, "payment": payment_id, "reference": outcome.reference},
        )
        version = conn.execute(
            sa.text(
                """UPDATE app.dossiers SET version = version + 1 WHERE dossier_number = :n
                   RETURNING version - 1 AS before, version"""
            ),
            {"n": attempt.dossier_number},
        ).one()
        before["version"] = version.before
        after |= {"state": "captured", "payment_id": payment_id, "reference": outcome.reference}
        after["version"] = version.version
    else:
        mail_id, unmailed = _mail(conn, attempt, actor)
        conn.execute(
            sa.text(
                """UPDATE app.balance_charge_attempts
                   SET state = 'declined', decline_reason = :reason, retryable = :retryable, mail_id = :mail,
                       decided_at = now()
                   WHERE id = :id"""
            ),
            {"id": attempt.id, "reason": outcome.reason, "retryable": outcome.retryable, "mail": mail_id},
        )
        after |= {"state": "declined", "reason": outcome.reason, "retryable": outcome.retryable, "mail_id": mail_id}
        if unmailed:
            after["unmailed"] = unmailed
    decided = next(a for a in _attempts(conn, attempt.dossier_number, attempt.seq) if a.id == attempt.id)
    history = _attempts(conn, attempt.dossier_number, attempt.seq)
    after["standing"] = _standing(history, policy)[0]
    audit.record(conn, actor, CHARGE, dossier_number=attempt.dossier_number, before=before or None, after=after)
    return decided


def _count(report: ChargeReport, attempt: Attempt, standing: str) -> None:
    report.attempt_ids.append(attempt.id)
    if attempt.state == "captured":
        report.captured += 1
        report.captured_amounts[attempt.currency] += attempt.amount
    elif attempt.state == "declined":
        report.declined += 1
        report.declined_amounts[attempt.currency] += attempt.amount
        report.given_up += standing == "given_up"


def _call_and_settle(
    engine: Engine, attempt: Attempt, provider: PaymentProvider, actor: str, policy: RetryPolicy, report: ChargeReport
) -> Attempt | None:
    """Steps 2 and 3 for one pending attempt; None if the provider did not answer (it stays pending)."""
    try:
        outcome = provider.charge(
            dossier_number=attempt.dossier_number,
            amount=attempt.amount,
            currency=attempt.currency,
            idempotency_key=attempt.provider_key,
        )
    except Exception as error:  # whatever the provider did is found out by asking again with the key
        log.warning("charge %s of %s seq %s left pending: %s", attempt.id, attempt.dossier_number, attempt.seq, error)
        report.unsettled += 1
        return None
    with engine.begin() as conn:
        decided = _settle(conn, attempt, outcome, actor, policy)
        standing = _standing(_attempts(conn, attempt.dossier_number, attempt.seq), policy)[0]
    _count(report, decided, standing)
    return decided


# Dossiers that may have a card-on-file item to charge: a necessary condition only (something due
# by `today` is not paid, and some card item due by then has no capture), to skip the paid ones
# in one query. Which item and how much is decided by schedule_states, under the dossier's lock.
_CANDIDATES = sa.text(
    """SELECT d.dossier_number FROM app.dossiers d
       WHERE d.status = 'confirmed'
         AND EXISTS (SELECT 1 FROM app.payment_schedule s
                     WHERE s.dossier_number = d.dossier_number AND s.method = 'card_on_file' AND s.due_date <= :today
                       AND NOT EXISTS (SELECT 1 FROM app.balance_charge_attempts a
                                       WHERE a.dossier_number = s.dossier_number AND a.seq = s.seq
                                         AND a.state = 'captured'))
         AND (SELECT coalesce(sum(s.amount), 0) FROM app.payment_schedule s
              WHERE s.dossier_number = d.dossier_number AND s.due_date <= :today)
             > (SELECT coalesce(sum(p.amount), 0) FROM app.dossier_payments p
                WHERE p.dossier_number = d.dossier_number AND p.status = ANY(:moving))
       ORDER BY d.dossier_number"""
)


def _next_item(conn: Connection, number: str, today: date, policy: RetryPolicy) -> tuple[Any, Any]:
    """Under the dossier's lock: (dossier, the first card-on-file item the run should charge today) or None."""
    dossier, states = _due_items(conn, number, today)
    if dossier is None or dossier.status != "confirmed":
        return dossier, None
    history: dict[int, list[Attempt]] = {}
    for attempt in _attempts(conn, number):
        history.setdefault(attempt.seq, []).append(attempt)
    for item in states:
        if item.method != "card_on_file" or item.due_date > today or item.remaining <= 0:
            continue
        standing, next_try = _standing(history.get(item.seq, []), policy)
        if standing == "due" or (standing == "retrying" and next_try is not None and next_try <= today):
            return dossier, item
    return dossier, None


def charge_due_balances(
    engine: Engine,
    today: date,
    provider: PaymentProvider,
    actor: str = SYSTEM,
    policy: RetryPolicy | None = None,
) -> ChargeReport:
    """Charge every card-on-file schedule item of a confirmed dossier that is due by `today` and not
    paid, once a day at most, retrying declines per `policy` (default: the settings). The
    scheduler's action (`actor` is a login, SYSTEM by default): no permission is checked.

    Each attempt commits on its own, so one failure leaves the others done; a re-run the same day
    charges nothing twice.
    """
    policy = policy or RetryPolicy.from_settings()
    report = ChargeReport(today)
    with engine.connect() as conn:
        pending = conn.execute(
            sa.text(f"SELECT {_ATTEMPT_COLUMNS} FROM app.balance_charge_attempts WHERE state = 'pending' ORDER BY id")
        ).mappings()
        leftovers = [Attempt(**r) for r in pending]
        numbers = list(conn.execute(_CANDIDATES, {"today": today, "moving": list(MONEY_MOVING)}).scalars())
    for attempt in leftovers:
        if _call_and_settle(engine, attempt, provider, actor, policy, report) is not None:
            report.settled += 1
    for number in numbers:
        while True:
            with engine.begin() as conn:
                dossier, item = _next_item(conn, number, today, policy)
                if item is None:
                    break
                attempt = _start(conn, dossier, item.seq, item.remaining, today, "schedule", actor, provider.name)
            if _call_and_settle(engine, attempt, provider, actor, policy, report) is None:
                break
    return report


def _seq(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput("seq", f"{value!r} is not a schedule item number")
    try:
        seq = int(value)
    except ValueError:
        raise InvalidInput("seq", f"{value!r} is not a schedule item number") from None
    if seq < 1:
        raise InvalidInput("seq", f"{seq} is not a schedule item number")
    return seq


def charge_now(
    uow: UnitOfWork,
    actor: Actor,
    *,
    dossier_number: str,
    seq: int | str,
    expected_version: int,
    idempotency_key: str,
    provider: PaymentProvider | None = None,
) -> Attempt:
    """An agent's "retry the charge now" on a declined card-on-file item (`record_payment`).

    Charges what is left to pay on the item today, outside the retry policy; a decline mails the
    client like any other. Returns the decided attempt; ChargeUnsettled if the provider did not
    answer (the attempt stays pending and the next daily run settles it). The default provider is
    the simulator with the settings' decline rate.
    """
    given_number = dossier_number if isinstance(dossier_number, str) else None
    audit.require(uow.engine, actor, PERMISSION, CHARGE_NOW, given_number)
    try:
        request = {"dossier_number": dossier_number_of(dossier_number), "seq": _seq(seq)}
    except InvalidInput as error:
        audit.refuse(uow, actor, CHARGE_NOW, given_number, error)
    number, item_seq = request["dossier_number"], request["seq"]
    provider = provider or SimulatorProvider.from_settings(uow.engine)
    policy = RetryPolicy.from_settings()
    earlier = idempotency.claim(
        uow.conn, idempotency_key, CHARGE_NOW, {**request, "expected_version": expected_version}, actor.login
    )
    if earlier is not None:
        attempt = next(a for a in _attempts(uow.conn, number, item_seq) if a.id == earlier["attempt_id"])
        if attempt.state != "pending":
            return attempt
        uow.commit()  # a replay of a request whose outcome was never recorded: ask the provider again
    else:
        today = accounting_today()
        dossier, states = _due_items(uow.conn, number, today)
        if dossier is None:
            audit.refuse(uow, actor, CHARGE_NOW, number, NotFound(f"dossier {number} does not exist"))
        if dossier.version != expected_version:
            audit.refuse(
                uow, actor, CHARGE_NOW, number, StaleVersion(f"dossier {number}", expected_version, dossier.version)
            )
        if dossier.status != "confirmed":
            audit.refuse(
                uow, actor, CHARGE_NOW, number, InvalidInput("dossier_number", f"dossier {number} is {dossier.status}")
            )
        item = next((s for s in states if s.seq == item_seq), None)
        if item is None:
            audit.refuse(
                uow, actor, CHARGE_NOW, number, InvalidInput("seq", f"dossier {number} has no schedule item {item_seq}")
            )
        if item.method != "card_on_file":
            audit.refuse(
                uow, actor, CHARGE_NOW, number, InvalidInput("seq", f"item {item_seq} is not paid by the card on file")
            )
        standing, _ = _standing(_attempts(uow.conn, number, item_seq), policy)
        problem = {
            "due": "has not been declined: the daily run charges it",
            "pending": "is being charged; the daily run settles it",
            "captured": "was already charged",
        }.get(standing)
        if problem is None and item.remaining <= 0:
            problem = "is paid"
        if problem is not None:
            audit.refuse(uow, actor, CHARGE_NOW, number, InvalidInput("seq", f"item {item_seq} {problem}"))
        attempt = _start(uow.conn, dossier, item_seq, item.remaining, today, "agent", actor.login, provider.name)
        audit.record(
            uow.conn,
            actor.login,
            CHARGE_NOW,
            dossier_number=number,
            before={"version": dossier.version},
            after={"attempt_id": attempt.id, "seq": item_seq, "amount": attempt.amount, "currency": attempt.currency},
        )
        idempotency.store(uow.conn, idempotency_key, {"attempt_id": attempt.id})
        uow.commit()  # the pending attempt exists before the provider is asked
    report = ChargeReport(attempt.attempted_on)
    decided = _call_and_settle(uow.engine, attempt, provider, actor.login, policy, report)
    if decided is None:
        raise ChargeUnsettled(
            f"the payment provider did not answer; the charge of item {item_seq} is pending and the next daily run"
            " settles it"
        )
    return decided
