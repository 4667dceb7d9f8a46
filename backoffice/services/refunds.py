"""Refunds: money given back to a client, never more than they paid, large ones approved by a second person.

A refund names the payment it gives back and a reason. It is limited twice: by what is left of
that payment (its amount less the refunds already executed or waiting on it), and by what is
left on the dossier (the net amount paid, refunds and chargebacks subtracted, less the refunds
waiting for approval). Both are computed with the dossier row locked (SELECT ... FOR UPDATE), so
two refunds at once on one dossier are checked one after the other and can never together
exceed what was paid.

By the original method where possible: a card payment is refunded to the same card through its
provider, citing the original `provider_reference`; a bank transfer by a transfer back; gift and
holiday vouchers, cheques and cash cannot be handed back by the back-office and are refunded by
bank transfer to the payer.

Up to the approval threshold (Settings.refund_approval_threshold, in the dossier's currency) a
refund is executed at once: a new app.payments row, negative, status `refunded`, `refund_of` the
original. Above it, the request waits in `pending_approval` (no money moves, its amount is
reserved) until someone else with `approve_refund` approves it (executed then) or refuses it.
Every step changes what the dossier shows, so it bumps the dossier's `version`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from backoffice.config import get_settings
from backoffice.domain.errors import DomainError, InvalidInput, NotFound, PermissionDenied, StaleVersion
from backoffice.domain.money import parse_amount
from backoffice.domain.permissions import Actor
from backoffice.domain.text import optional_text, required_text
from backoffice.services import audit, idempotency
from backoffice.services.payments import (
    DOSSIER_PAYMENTS,
    MAX_REASON,
    MONEY_MOVING,
    bump_version,
    dossier_number_of,
)
from backoffice.services.unit_of_work import UnitOfWork

REFUND = "refund"
APPROVE = "approve_refund"
REFUSE = "refuse_refund"
# How each original method is refunded; what is not here (vouchers, cheques, cash) goes back by transfer.
REFUND_METHOD = {"card": "card", "transfer": "transfer"}


class SecondPersonRequired(PermissionDenied):
    def __init__(self, actor: str) -> None:
        DomainError.__init__(self, f"{actor} asked for this refund: another person must approve or refuse it")
        self.actor = actor
        self.permission = APPROVE


@dataclass(frozen=True)
class Refund:
    id: int
    dossier_number: str
    payment_id: str
    amount: Decimal
    currency: str
    method: str
    reason: str
    state: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    refund_payment_id: str | None


def refund_method(original_method: str) -> str:
    return REFUND_METHOD.get(original_method, "transfer")


def _locked_dossier(uow: UnitOfWork, actor: Actor, action: str, number: str, expected: int) -> Any:
    dossier = uow.conn.execute(
        sa.text("SELECT currency, version FROM app.dossiers WHERE dossier_number = :n FOR UPDATE"), {"n": number}
    ).first()
    if dossier is None:
        audit.refuse(uow, actor, action, number, NotFound(f"dossier {number} does not exist"))
    if dossier.version != expected:
        audit.refuse(uow, actor, action, number, StaleVersion(f"dossier {number}", expected, dossier.version))
    return dossier


def _original(conn: Connection, number: str, payment_id: str) -> Any:
    """The payment being refunded, if it is one of the dossier's captured payments."""
    return conn.execute(
        sa.text(
            f"""SELECT payment_id, method, amount, currency, provider, provider_reference, payer_name
                FROM {DOSSIER_PAYMENTS} p WHERE payment_id = :id AND status = 'captured' AND amount > 0"""
        ),
        {"number": number, "id": payment_id},
    ).first()


def refundable(
    conn: Connection, number: str, currency: str, payment_id: str | None = None, besides: int | None = None
) -> Decimal:
    """What can still be refunded on the dossier (and on `payment_id` if given), pending refunds reserved
    except the refund `besides` (the one being approved)."""
    row = conn.execute(
        sa.text(
            f"""SELECT
                  (SELECT coalesce(sum(amount), 0) FROM {DOSSIER_PAYMENTS} p
                   WHERE status = ANY(:moving) AND currency = :currency)
                - (SELECT coalesce(sum(amount), 0) FROM app.refunds
                   WHERE dossier_number = :number AND state = 'pending_approval'
                     AND id IS DISTINCT FROM :besides) AS on_dossier,
                  (SELECT amount FROM app.payments WHERE payment_id = :id)
                - (SELECT coalesce(sum(amount), 0) FROM app.refunds
                   WHERE payment_id = :id AND state IN ('pending_approval', 'executed')
                     AND id IS DISTINCT FROM :besides) AS on_payment"""
        ),
        {"number": number, "currency": currency, "moving": list(MONEY_MOVING), "id": payment_id, "besides": besides},
    ).one()
    left = max(row.on_dossier, Decimal("0.00"))
    return left if payment_id is None else min(left, max(row.on_payment, Decimal("0.00")))


_INSERT_PAYMENT = sa.text(
    """INSERT INTO app.payments (payment_id, dossier_number, received_at, method, amount, currency, status,
           provider, provider_reference, payer_name, origin, reason, created_by, refund_of)
       VALUES ('RFD-' || lpad(CAST(:refund_id AS text), 6, '0'), :dossier_number, now(), :method, -:amount, :currency,
           'refunded', :provider, :provider_reference, :payer_name, 'refund', :reason, :actor, :payment_id)
       RETURNING payment_id"""
)


def _pay_out(uow: UnitOfWork, refund: dict[str, Any], original: Any, actor: Actor) -> str:
    """The money movement of an executed refund, by the original method where possible."""
    by_card = refund["method"] == "card"
    return uow.conn.execute(
        _INSERT_PAYMENT,
        {
            "refund_id": refund["id"],
            "dossier_number": refund["dossier_number"],
            "method": refund["method"],
            "amount": refund["amount"],
            "currency": refund["currency"],
            "provider": original.provider if by_card else "bank",
            "provider_reference": original.provider_reference if by_card else None,
            "payer_name": original.payer_name,
            "reason": refund["reason"],
            "actor": actor.login,
            "payment_id": refund["payment_id"],
        },
    ).scalar_one()


def request_refund(
    uow: UnitOfWork,
    actor: Actor,
    *,
    dossier_number: str,
    payment_id: str,
    amount: str,
    reason: str,
    expected_version: int,
    idempotency_key: str,
) -> Refund:
    """Refund (part of) one of the dossier's payments; executed at once up to the threshold, else pending."""
    given_number = dossier_number if isinstance(dossier_number, str) else None
    audit.require(uow.engine, actor, REFUND, REFUND, given_number)
    try:
        number = dossier_number_of(dossier_number)
        if not isinstance(payment_id, str) or not payment_id.strip():
            raise InvalidInput("payment_id", "is required")
        value = parse_amount(amount, "amount")
        if value <= 0:
            raise InvalidInput("amount", "must be more than 0")
        request = {
            "dossier_number": number,
            "payment_id": payment_id.strip(),
            "amount": value,
            "reason": required_text(reason, "reason", MAX_REASON),
        }
    except InvalidInput as error:
        audit.refuse(uow, actor, REFUND, given_number, error)
    earlier = idempotency.claim(
        uow.conn, idempotency_key, REFUND, {**request, "expected_version": expected_version}, actor.login
    )
    if earlier is not None:
        return _load(uow.conn, int(earlier["refund_id"]))
    dossier = _locked_dossier(uow, actor, REFUND, number, expected_version)
    original = _original(uow.conn, number, request["payment_id"])
    if original is None:
        error = InvalidInput("payment_id", f"{request['payment_id']} is not a captured payment of dossier {number}")
        audit.refuse(uow, actor, REFUND, number, error)
    if original.currency != dossier.currency:
        error = InvalidInput("payment_id", f"{original.payment_id} is in {original.currency}, not {dossier.currency}")
        audit.refuse(uow, actor, REFUND, number, error)
    limit = refundable(uow.conn, number, dossier.currency, original.payment_id)
    if value > limit:
        error = InvalidInput("amount", f"{value} is more than the {limit} {dossier.currency} that can be refunded")
        audit.refuse(uow, actor, REFUND, number, error)
    needs_approval = value > get_settings().refund_approval_threshold
    refund = {
        **request,
        "id": uow.conn.execute(sa.text("SELECT nextval(pg_get_serial_sequence('app.refunds', 'id'))")).scalar_one(),
        "currency": dossier.currency,
        "method": refund_method(original.method),
        "state": "pending_approval" if needs_approval else "executed",
        "refund_payment_id": None,
    }
    if not needs_approval:
        refund["refund_payment_id"] = _pay_out(uow, refund, original, actor)
    uow.conn.execute(
        sa.text(
            """INSERT INTO app.refunds (id, dossier_number, payment_id, amount, currency, method, reason, state,
                   requested_by, decided_at, refund_payment_id)
               VALUES (:id, :dossier_number, :payment_id, :amount, :currency, :method, :reason, :state, :actor,
                   CASE WHEN :state = 'executed' THEN now() END, :refund_payment_id)"""
        ),
        {**refund, "actor": actor.login},
    )
    version = bump_version(uow, actor, REFUND, number, expected_version)
    audit.record(
        uow.conn,
        actor.login,
        REFUND,
        dossier_number=number,
        before={"version": dossier.version, "refundable": limit},
        after={
            "version": version,
            "refund_id": refund["id"],
            **{k: v for k, v in refund.items() if k not in ("id", "dossier_number")},
        },
    )
    idempotency.store(uow.conn, idempotency_key, {"refund_id": refund["id"]})
    uow.commit()
    return _load(uow.conn, refund["id"])


def _checked_decision(
    uow: UnitOfWork, actor: Actor, action: str, refund_id: object, note: object, *, note_required: bool
) -> tuple[int, str | None]:
    """The permission and the input of an approval or refusal: (refund id, cleaned note)."""
    valid_id = isinstance(refund_id, int) and not isinstance(refund_id, bool)
    # Read first so that a refusal shows in the dossier's history.
    number = (
        uow.conn.execute(sa.text("SELECT dossier_number FROM app.refunds WHERE id = :id"), {"id": refund_id}).scalar()
        if valid_id
        else None
    )
    audit.require(uow.engine, actor, APPROVE, action, number)
    try:
        if not valid_id:
            raise InvalidInput("refund_id", f"{refund_id!r} is not a refund id")
        return int(refund_id), (required_text if note_required else optional_text)(
            note, "reason" if note_required else "note", MAX_REASON
        )
    except InvalidInput as error:
        audit.refuse(uow, actor, action, number, error)


def _pending(uow: UnitOfWork, actor: Actor, action: str, refund_id: int, expected_version: int) -> tuple[Any, Any]:
    """The pending refund, someone else's, and its dossier, both locked."""
    refund = uow.conn.execute(sa.text("SELECT * FROM app.refunds WHERE id = :id FOR UPDATE"), {"id": refund_id}).first()
    if refund is None:
        audit.refuse(uow, actor, action, None, NotFound(f"refund {refund_id} does not exist"))
    if refund.requested_by == actor.login:
        audit.refuse(uow, actor, action, refund.dossier_number, SecondPersonRequired(actor.login))
    if refund.state != "pending_approval":
        error = InvalidInput("refund_id", f"refund {refund_id} was already {refund.state}")
        audit.refuse(uow, actor, action, refund.dossier_number, error)
    return refund, _locked_dossier(uow, actor, action, refund.dossier_number, expected_version)


def approve_refund(
    uow: UnitOfWork,
    actor: Actor,
    *,
    refund_id: int,
    note: str | None = None,
    expected_version: int,
    idempotency_key: str,
) -> Refund:
    """Approve a pending refund (someone else's) and execute it; the limits are checked again."""
    refund_id, cleaned = _checked_decision(uow, actor, APPROVE, refund_id, note, note_required=False)
    request = {"refund_id": refund_id, "note": cleaned, "expected_version": expected_version}
    earlier = idempotency.claim(uow.conn, idempotency_key, APPROVE, request, actor.login)
    if earlier is not None:
        return _load(uow.conn, int(earlier["refund_id"]))
    refund, dossier = _pending(uow, actor, APPROVE, refund_id, expected_version)
    number = refund.dossier_number
    original = _original(uow.conn, number, refund.payment_id)
    limit = refundable(uow.conn, number, dossier.currency, refund.payment_id, besides=refund.id)
    if original is None or refund.amount > limit:
        error = InvalidInput("amount", f"{refund.amount} is more than the {limit} {dossier.currency} left to refund")
        audit.refuse(uow, actor, APPROVE, number, error)
    row = {k: getattr(refund, k) for k in ("id", "dossier_number", "payment_id", "method", "amount", "currency")}
    payment_id = _pay_out(uow, {**row, "reason": refund.reason}, original, actor)
    uow.conn.execute(
        sa.text(
            """UPDATE app.refunds SET state = 'executed', decided_by = :actor, decided_at = now(),
                   decision_note = :note, refund_payment_id = :payment WHERE id = :id"""
        ),
        {"actor": actor.login, "note": cleaned, "payment": payment_id, "id": refund.id},
    )
    version = bump_version(uow, actor, APPROVE, number, expected_version)
    audit.record(
        uow.conn,
        actor.login,
        APPROVE,
        dossier_number=number,
        before={"version": dossier.version, "refund_id": refund.id, "state": refund.state},
        after={
            "version": version,
            "refund_id": refund.id,
            "state": "executed",
            "requested_by": refund.requested_by,
            "amount": refund.amount,
            "currency": refund.currency,
            "refund_payment_id": payment_id,
            "note": cleaned,
        },
    )
    idempotency.store(uow.conn, idempotency_key, {"refund_id": refund.id})
    uow.commit()
    return _load(uow.conn, refund.id)


def refuse_refund(
    uow: UnitOfWork,
    actor: Actor,
    *,
    refund_id: int,
    reason: str,
    expected_version: int,
    idempotency_key: str,
) -> Refund:
    """Refuse a pending refund (someone else's), with a reason; no money moves."""
    refund_id, cleaned = _checked_decision(uow, actor, REFUSE, refund_id, reason, note_required=True)
    request = {"refund_id": refund_id, "reason": cleaned, "expected_version": expected_version}
    earlier = idempotency.claim(uow.conn, idempotency_key, REFUSE, request, actor.login)
    if earlier is not None:
        return _load(uow.conn, int(earlier["refund_id"]))
    refund, dossier = _pending(uow, actor, REFUSE, refund_id, expected_version)
    uow.conn.execute(
        sa.text(
            """UPDATE app.refunds SET state = 'refused', decided_by = :actor, decided_at = now(),
                   decision_note = :note WHERE id = :id"""
        ),
        {"actor": actor.login, "note": cleaned, "id": refund.id},
    )
    version = bump_version(uow, actor, REFUSE, refund.dossier_number, expected_version)
    audit.record(
        uow.conn,
        actor.login,
        REFUSE,
        dossier_number=refund.dossier_number,
        before={"version": dossier.version, "refund_id": refund.id, "state": refund.state},
        after={"version": version, "refund_id": refund.id, "state": "refused", "reason": cleaned},
    )
    idempotency.store(uow.conn, idempotency_key, {"refund_id": refund.id})
    uow.commit()
    return _load(uow.conn, refund.id)


_COLUMNS = ", ".join(Refund.__dataclass_fields__)


def _load(conn: Connection, refund_id: int) -> Refund:
    row = conn.execute(sa.text(f"SELECT {_COLUMNS} FROM app.refunds WHERE id = :id"), {"id": refund_id}).mappings()
    return Refund(**row.one())


def list_refunds(conn: Connection, dossier_number: str) -> list[Refund]:
    """The dossier's refund requests, newest first."""
    rows = conn.execute(
        sa.text(
            f"""SELECT {_COLUMNS} FROM app.refunds WHERE dossier_number = :n
                ORDER BY requested_at DESC, id DESC"""
        ),
        {"n": dossier_number},
    ).mappings()
    return [Refund(**r) for r in rows]
