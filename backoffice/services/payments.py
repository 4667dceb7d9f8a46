"""Payments an agent records by hand, and the queue of payments that arrived without a dossier.

app.payments is immutable. A manual payment is a new row with a generated id (`MAN-<n>`, which
no provider uses). A payment that landed with no dossier, or naming a dossier we do not have,
is attributed by a row of app.payment_attributions; `DOSSIER_PAYMENTS` is the one definition of
"the payments of a dossier" that every reader uses, so an attribution counts everywhere at once.
Both actions change what the dossier shows: they bump its `version` (a form opened before is
refused as stale).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from backoffice.domain.clock import accounting_today
from backoffice.domain.errors import InvalidInput, NotFound, StaleVersion
from backoffice.domain.money import check_currency, parse_amount
from backoffice.domain.permissions import Actor
from backoffice.domain.text import optional_text, required_text
from backoffice.services import audit, idempotency, periods
from backoffice.services.unit_of_work import UnitOfWork

RECORD = "record_payment"
ASSIGN = "assign_payment"
METHODS = ("card", "transfer", "gift_voucher", "holiday_voucher", "cheque", "cash")
# Only these move money (landing contract); a failed attempt is shown but never counted.
MONEY_MOVING = ("captured", "refunded", "chargeback")
MAX_TEXT = 200
MAX_REASON = 500
# A payment received more than this long ago is a typo, or belongs to the accountants' corrections.
MAX_BACKDATE_DAYS = 366
VOUCHER_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{3,39}$")

# The payments of dossier `:number`, attributions included (the view app.dossier_payments,
# migration 0011, is the one definition). A subquery with the columns of app.payments.
DOSSIER_PAYMENTS = "(SELECT * FROM app.dossier_payments WHERE dossier_number = :number)"

# Bumps the version only if nobody changed the dossier since the agent read it.
BUMP = sa.text(
    """UPDATE app.dossiers SET version = version + 1
       WHERE dossier_number = :number AND version = :expected RETURNING version"""
)


def dossier_number_of(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("dossier_number", "is required")
    return value.strip().upper()


def bump_version(uow: UnitOfWork, actor: Actor, action: str, number: str, expected: int) -> int:
    """The dossier's new version, or a refusal (rolling the caller's writes back) if it is stale."""
    bumped = uow.conn.execute(BUMP, {"number": number, "expected": expected}).scalar()
    if bumped is None:
        current = uow.conn.execute(
            sa.text("SELECT version FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()
        audit.refuse(uow, actor, action, number, StaleVersion(f"dossier {number}", expected, current))
    return int(bumped)


def _received_on(value: object, today: date) -> date:
    if value is None or value == "":
        return today
    if isinstance(value, datetime) or not isinstance(value, date | str):
        raise InvalidInput("received_on", f"{value!r} is not a date")
    try:
        day = value if isinstance(value, date) else date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput("received_on", f"{value!r} is not a date (YYYY-MM-DD)") from None
    if day > today:
        raise InvalidInput("received_on", "is in the future")
    if day < today - timedelta(days=MAX_BACKDATE_DAYS):
        raise InvalidInput("received_on", f"is more than {MAX_BACKDATE_DAYS} days ago")
    return day


def _checked_payment(
    dossier_number: object,
    method: object,
    amount: object,
    currency: object,
    received_on: object,
    voucher_code: object,
    reference: object,
    payer_name: object,
    note: object,
    today: date,
) -> dict[str, Any]:
    """The request in normal form, or InvalidInput naming the first bad field."""
    number = dossier_number_of(dossier_number)
    if method not in METHODS:
        raise InvalidInput("method", f"{method!r} is not one of {', '.join(METHODS)}")
    value = parse_amount(amount, "amount")
    if value <= 0:
        raise InvalidInput("amount", "must be more than 0 (a refund is recorded as a refund)")
    code = (required_text if method == "gift_voucher" else optional_text)(voucher_code, "voucher_code", 40)
    if code is not None:
        code = code.upper()
        if method not in ("gift_voucher", "holiday_voucher"):
            raise InvalidInput("voucher_code", "is only for gift and holiday vouchers")
        if not VOUCHER_CODE.match(code):
            raise InvalidInput("voucher_code", f"{code!r} must be 4 to 40 letters, digits or dashes")
    return {
        "dossier_number": number,
        "method": method,
        "amount": value,
        "currency": None if currency in (None, "") else check_currency(currency),
        "received_on": _received_on(received_on, today),
        "voucher_code": code,
        "reference": optional_text(reference, "reference", MAX_TEXT),
        "payer_name": optional_text(payer_name, "payer_name", MAX_TEXT),
        "note": optional_text(note, "note", MAX_REASON),
    }


_INSERT_MANUAL = sa.text(
    """INSERT INTO app.payments (payment_id, dossier_number, received_at, method, amount, currency, status,
           provider, provider_reference, payer_name, origin, voucher_code, reason, created_by)
       VALUES ('MAN-' || lpad(nextval('app.manual_payment_number')::text, 6, '0'), :dossier_number, :received_at,
           :method, :amount, :currency, 'captured', 'back_office', :reference, :payer_name, 'manual',
           :voucher_code, :note, :actor)
       RETURNING payment_id"""
)


def record_payment(
    uow: UnitOfWork,
    actor: Actor,
    *,
    dossier_number: str,
    method: str,
    amount: str,
    currency: str | None = None,
    received_on: date | str | None = None,
    voucher_code: str | None = None,
    reference: str | None = None,
    payer_name: str | None = None,
    note: str | None = None,
    expected_version: int,
    idempotency_key: str,
) -> str:
    """Record a payment taken by hand (any method of the landing contract); returns its payment id.

    The currency is the dossier's (given, it must be the dossier's). A gift voucher needs its code.
    `received_on` (default today) dates the payment, never in the future.
    """
    given_number = dossier_number if isinstance(dossier_number, str) else None
    audit.require(uow.engine, actor, RECORD, RECORD, given_number)
    today = accounting_today()
    try:
        request = _checked_payment(
            dossier_number, method, amount, currency, received_on, voucher_code, reference, payer_name, note, today
        )
    except InvalidInput as error:
        audit.refuse(uow, actor, RECORD, given_number, error)
    number = request["dossier_number"]
    earlier = idempotency.claim(
        uow.conn, idempotency_key, RECORD, {**request, "expected_version": expected_version}, actor.login
    )
    if earlier is not None:
        return str(earlier["payment_id"])
    dossier = uow.conn.execute(
        sa.text("SELECT currency, version FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
    ).first()
    if dossier is None:
        audit.refuse(uow, actor, RECORD, number, NotFound(f"dossier {number} does not exist"))
    if dossier.version != expected_version:
        audit.refuse(uow, actor, RECORD, number, StaleVersion(f"dossier {number}", expected_version, dossier.version))
    if request["currency"] not in (None, dossier.currency):
        error = InvalidInput("currency", f"the dossier is in {dossier.currency}, not {request['currency']}")
        audit.refuse(uow, actor, RECORD, number, error)
    periods.ensure_open(uow, actor, RECORD, request["received_on"], "received_on", number)
    # Today's payment carries the moment it was recorded; a back-dated one noon UTC of its day.
    received_at = (
        datetime.now(UTC)
        if request["received_on"] == today
        else datetime.combine(request["received_on"], time(12), tzinfo=UTC)
    )
    row = {**request, "currency": dossier.currency, "received_at": received_at, "actor": actor.login}
    payment_id = uow.conn.execute(_INSERT_MANUAL, row).scalar_one()
    version = bump_version(uow, actor, RECORD, number, expected_version)
    audit.record(
        uow.conn,
        actor.login,
        RECORD,
        dossier_number=number,
        before={"version": dossier.version},
        after={
            "version": version,
            "payment_id": payment_id,
            **{k: v for k, v in row.items() if k not in ("dossier_number", "actor")},
        },
    )
    idempotency.store(uow.conn, idempotency_key, {"payment_id": payment_id})
    uow.commit()
    return str(payment_id)


@dataclass(frozen=True)
class WaitingPayment:
    """A money-moving payment no dossier of ours claims yet."""

    payment_id: str
    named_dossier: str | None
    received_at: datetime
    method: str
    amount: Decimal
    currency: str
    status: str
    provider: str | None
    provider_reference: str | None
    payer_name: str | None


# Ingested, moving money, naming no dossier or one we do not have, and not attributed yet.
_WAITING = """
    FROM app.payments p
    WHERE p.origin = 'ingestion' AND p.status IN ('captured', 'refunded', 'chargeback')
      AND (p.dossier_number IS NULL
           OR NOT EXISTS (SELECT 1 FROM app.dossiers d WHERE d.dossier_number = p.dossier_number))
      AND NOT EXISTS (SELECT 1 FROM app.payment_attributions a WHERE a.payment_id = p.payment_id)"""


def unattributed_payments(conn: Connection, limit: int = 500) -> list[WaitingPayment]:
    """The queue, oldest first."""
    rows = conn.execute(
        sa.text(
            f"""SELECT p.payment_id, p.dossier_number AS named_dossier, p.received_at, p.method, p.amount,
                       p.currency, p.status, p.provider, p.provider_reference, p.payer_name
                {_WAITING}
                ORDER BY p.received_at, p.payment_id LIMIT :limit"""
        ),
        {"limit": limit},
    ).mappings()
    return [WaitingPayment(**r) for r in rows]


def assign_payment(
    uow: UnitOfWork,
    actor: Actor,
    *,
    payment_id: str,
    dossier_number: str,
    reason: str,
    expected_version: int,
    idempotency_key: str,
) -> None:
    """Attribute a payment from the queue to a dossier (same currency), with a reason.

    `expected_version` is the version of the dossier the agent confirmed the payment against.
    """
    given_number = dossier_number if isinstance(dossier_number, str) else None
    audit.require(uow.engine, actor, RECORD, ASSIGN, given_number)
    try:
        if not isinstance(payment_id, str) or not payment_id.strip():
            raise InvalidInput("payment_id", "is required")
        request = {
            "payment_id": payment_id.strip(),
            "dossier_number": dossier_number_of(dossier_number),
            "reason": required_text(reason, "reason", MAX_REASON),
        }
    except InvalidInput as error:
        audit.refuse(uow, actor, ASSIGN, given_number, error)
    number = request["dossier_number"]
    earlier = idempotency.claim(
        uow.conn, idempotency_key, ASSIGN, {**request, "expected_version": expected_version}, actor.login
    )
    if earlier is not None:
        return
    waiting = uow.conn.execute(
        sa.text(f"SELECT p.payment_id, p.currency, p.amount, p.dossier_number {_WAITING} AND p.payment_id = :id"),
        {"id": request["payment_id"]},
    ).first()
    if waiting is None:
        exists = uow.conn.execute(
            sa.text("SELECT 1 FROM app.payments WHERE payment_id = :id"), {"id": request["payment_id"]}
        ).first()
        problem = "already belongs to a dossier" if exists else "is not a payment we received"
        audit.refuse(uow, actor, ASSIGN, number, InvalidInput("payment_id", f"{request['payment_id']} {problem}"))
    dossier = uow.conn.execute(
        sa.text("SELECT currency, version FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
    ).first()
    if dossier is None:
        audit.refuse(uow, actor, ASSIGN, number, InvalidInput("dossier_number", f"dossier {number} does not exist"))
    if dossier.version != expected_version:
        audit.refuse(uow, actor, ASSIGN, number, StaleVersion(f"dossier {number}", expected_version, dossier.version))
    if waiting.currency != dossier.currency:
        error = InvalidInput(
            "dossier_number", f"the payment is in {waiting.currency} and dossier {number} in {dossier.currency}"
        )
        audit.refuse(uow, actor, ASSIGN, number, error)
    # Two agents assigning the same payment at once: the primary key lets one in, the other is told.
    inserted = uow.conn.execute(
        sa.text(
            """INSERT INTO app.payment_attributions (payment_id, dossier_number, reason, attributed_by)
               VALUES (:payment_id, :dossier_number, :reason, :actor)
               ON CONFLICT (payment_id) DO NOTHING RETURNING payment_id"""
        ),
        {**request, "actor": actor.login},
    ).first()
    if inserted is None:
        error = InvalidInput("payment_id", f"{request['payment_id']} was just attributed by someone else")
        audit.refuse(uow, actor, ASSIGN, number, error)
    version = bump_version(uow, actor, ASSIGN, number, expected_version)
    audit.record(
        uow.conn,
        actor.login,
        ASSIGN,
        dossier_number=number,
        before={"version": dossier.version, "payment_id": waiting.payment_id, "named_dossier": waiting.dossier_number},
        after={
            "version": version,
            "payment_id": waiting.payment_id,
            "amount": waiting.amount,
            "currency": waiting.currency,
            "reason": request["reason"],
        },
    )
    idempotency.store(uow.conn, idempotency_key, {"payment_id": waiting.payment_id})
    uow.commit()


@dataclass(frozen=True)
class ScheduleState:
    seq: int
    due_date: date
    kind: str
    method: str
    amount: Decimal
    # What is still to pay on this item once the net paid amount covers the items in due order.
    remaining: Decimal
    state: str  # paid | due | overdue | upcoming


def schedule_states(schedule: Any, paid_total: Decimal, today: date) -> list[ScheduleState]:
    """Each scheduled item (objects with seq, due_date, amount, kind, method) with its state.

    The net amount paid (refunds subtracted) covers the items in due order: an item is `paid`
    once covered, else `overdue` if its date passed, `due` today, `upcoming` after.
    """
    left = max(paid_total, Decimal("0.00"))
    states = []
    for item in sorted(schedule, key=lambda s: (s.due_date, s.seq)):
        covered = min(left, item.amount)
        left -= covered
        remaining = item.amount - covered
        if remaining <= 0:
            state = "paid"
        elif item.due_date < today:
            state = "overdue"
        elif item.due_date == today:
            state = "due"
        else:
            state = "upcoming"
        states.append(ScheduleState(item.seq, item.due_date, item.kind, item.method, item.amount, remaining, state))
    return states
