"""Settling a supplier invoice difference: write it off, undo a write-off, or turn it into a regulation.

The difference of a (dossier, supplier) is what marts.supplier_billing_status says is left:
invoiced - expected - what was already written off (`remaining_difference`). The accountant
passes the difference as the page showed it (`amount_seen`); if it changed since (a decision, a
new invoice line, another write-off), nothing is done and the refusal says so.

A write-off (`write_off` permission) records that difference in app.write_offs (immutable,
migration 0017) with the threshold in force (Settings.write_off_threshold, an absolute amount);
dbt then counts the difference as settled in the billing status and posts an OD entry (gain 758
or loss 658 against the supplier's 401 account; docs/accounting.md). An undo is a new row with the
opposite amount that names the write-off it cancels; a write-off is undone once.

Turning the difference into a regulation reuses the single-dossier regulation
(backoffice.services.regulations.apply_regulation, `regulation` permission): a purchase line of
the difference on the dossier's one confirmed service of that supplier, not passed on to the
client, so the Devis expects what the supplier invoiced.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from backoffice.config import get_settings
from backoffice.domain.errors import InvalidInput, NotFound
from backoffice.domain.money import parse_amount
from backoffice.domain.permissions import Actor
from backoffice.domain.text import required_text
from backoffice.queries import reconciliation as workbench
from backoffice.services import audit, idempotency, regulations
from backoffice.services.unit_of_work import UnitOfWork

ACTION = "write_off"
UNDO_ACTION = "write_off_undo"
REGULATION_ACTION = "difference_regulation"
MAX_REASON = 500
MAX_CODE = 50


def _pair(dossier_number: object, supplier_code: object) -> tuple[str, str]:
    number = required_text(dossier_number, "dossier_number", MAX_CODE).upper()
    return number, required_text(supplier_code, "supplier_code", MAX_CODE)


def _lock_dossier(uow: UnitOfWork, actor: Actor, action: str, number: str) -> Any:
    """Lock the dossier: settlements of one dossier run one at a time, each reading what the last left."""
    dossier = uow.conn.execute(
        sa.text("SELECT version, currency FROM app.dossiers WHERE dossier_number = :n FOR UPDATE"), {"n": number}
    ).first()
    if dossier is None:
        audit.refuse(uow, actor, action, number, NotFound(f"dossier {number} does not exist"))
    return dossier


def _current(
    uow: UnitOfWork, actor: Actor, action: str, number: str, supplier: str, seen: Decimal
) -> workbench.Difference:
    """The difference left now, refused if there is none or it is not the one the accountant saw."""
    found = workbench.difference(uow.conn, number, supplier)
    if found is None:
        error = InvalidInput("supplier_code", f"nothing is expected from nor invoiced by {supplier} on {number}")
        audit.refuse(uow, actor, action, number, error)
    if found.remaining == 0:
        audit.refuse(uow, actor, action, number, InvalidInput("amount_seen", "there is no difference left to settle"))
    if found.remaining != seen:
        error = InvalidInput(
            "amount_seen",
            f"the difference is now {found.remaining} {found.currency}, not {seen} as you saw it; look at it again",
        )
        audit.refuse(uow, actor, action, number, error)
    return found


_INSERT = sa.text(
    """INSERT INTO app.write_offs (dossier_number, supplier_code, amount, invoiced_amount, expected_amount, currency,
                                  threshold, reason, created_by, reverses_id)
       VALUES (:dossier, :supplier, :amount, :invoiced, :expected, :currency, :threshold, :reason, :actor, :reverses)
       RETURNING id"""
)


def write_off(
    uow: UnitOfWork,
    actor: Actor,
    *,
    dossier_number: str,
    supplier_code: str,
    amount_seen: str | Decimal,
    reason: str,
    idempotency_key: str,
) -> int:
    """Write off the difference left between what `supplier_code` invoiced and what dossier
    `dossier_number` expects (invoiced - expected, as the accountant saw it); returns the write-off id."""
    audit.require(uow.engine, actor, "write_off", ACTION, dossier_number if isinstance(dossier_number, str) else None)
    try:
        number, supplier = _pair(dossier_number, supplier_code)
        seen = parse_amount(amount_seen, "amount_seen")
        why = required_text(reason, "reason", MAX_REASON)
    except InvalidInput as error:
        audit.refuse(uow, actor, ACTION, dossier_number if isinstance(dossier_number, str) else None, error)
    arguments = {"dossier_number": number, "supplier_code": supplier, "amount_seen": str(seen), "reason": why}
    earlier = idempotency.claim(uow.conn, idempotency_key, ACTION, arguments, actor.login)
    if earlier is not None:
        return int(earlier["write_off_id"])
    _lock_dossier(uow, actor, ACTION, number)
    found = _current(uow, actor, ACTION, number, supplier, seen)
    threshold = get_settings().write_off_threshold
    if abs(found.remaining) > threshold:
        error = InvalidInput(
            "amount_seen",
            f"{found.remaining} {found.currency} is beyond the write-off threshold ({threshold}); "
            "turn it into a regulation or ask the supplier for a credit note",
        )
        audit.refuse(uow, actor, ACTION, number, error)
    write_off_id = uow.conn.execute(
        _INSERT,
        {
            "dossier": number,
            "supplier": supplier,
            "amount": found.remaining,
            "invoiced": found.invoiced_amount,
            "expected": found.expected_amount,
            "currency": found.currency,
            "threshold": threshold,
            "reason": why,
            "actor": actor.login,
            "reverses": None,
        },
    ).scalar_one()
    audit.record(
        uow.conn,
        actor.login,
        ACTION,
        dossier_number=number,
        before={"supplier_code": supplier, "status": found.status, "difference": found.remaining},
        after={
            "write_off_id": write_off_id,
            "supplier_code": supplier,
            "amount": found.remaining,
            "currency": found.currency,
            "threshold": threshold,
            "reason": why,
        },
    )
    idempotency.store(uow.conn, idempotency_key, {"write_off_id": write_off_id})
    uow.commit()
    return write_off_id


def undo_write_off(uow: UnitOfWork, actor: Actor, *, write_off_id: int, reason: str, idempotency_key: str) -> int:
    """Cancel a write-off with a row of the opposite amount; returns the new row's id."""
    audit.require(uow.engine, actor, "write_off", UNDO_ACTION)
    try:
        if isinstance(write_off_id, bool) or not isinstance(write_off_id, int):
            raise InvalidInput("write_off_id", f"{write_off_id!r} is not a write-off id")
        why = required_text(reason, "reason", MAX_REASON)
    except InvalidInput as error:
        audit.refuse(uow, actor, UNDO_ACTION, None, error)
    earlier = idempotency.claim(
        uow.conn, idempotency_key, UNDO_ACTION, {"write_off_id": write_off_id, "reason": why}, actor.login
    )
    if earlier is not None:
        return int(earlier["write_off_id"])
    original = uow.conn.execute(sa.text("SELECT * FROM app.write_offs WHERE id = :id"), {"id": write_off_id}).first()
    if original is None:
        audit.refuse(uow, actor, UNDO_ACTION, None, NotFound(f"write-off {write_off_id} does not exist"))
    number = original.dossier_number
    _lock_dossier(uow, actor, UNDO_ACTION, number)  # then nobody undoes it meanwhile
    undone_by = uow.conn.execute(
        sa.text("SELECT id FROM app.write_offs WHERE reverses_id = :id"), {"id": write_off_id}
    ).scalar()
    if original.reverses_id is not None:
        error = InvalidInput("write_off_id", f"{write_off_id} is itself an undo; write the difference off again")
        audit.refuse(uow, actor, UNDO_ACTION, number, error)
    if undone_by is not None:
        error = InvalidInput("write_off_id", f"write-off {write_off_id} was already undone (by {undone_by})")
        audit.refuse(uow, actor, UNDO_ACTION, number, error)
    now = workbench.difference(uow.conn, number, original.supplier_code)
    undo_id = uow.conn.execute(
        _INSERT,
        {
            "dossier": number,
            "supplier": original.supplier_code,
            "amount": -original.amount,
            "invoiced": now.invoiced_amount if now else Decimal("0.00"),
            "expected": now.expected_amount if now else Decimal("0.00"),
            "currency": original.currency,
            "threshold": get_settings().write_off_threshold,
            "reason": why,
            "actor": actor.login,
            "reverses": write_off_id,
        },
    ).scalar_one()
    audit.record(
        uow.conn,
        actor.login,
        UNDO_ACTION,
        dossier_number=number,
        before={"write_off_id": write_off_id, "amount": original.amount, "currency": original.currency},
        after={"write_off_id": undo_id, "reverses_id": write_off_id, "amount": -original.amount, "reason": why},
    )
    idempotency.store(uow.conn, idempotency_key, {"write_off_id": undo_id})
    uow.commit()
    return undo_id


def turn_into_regulation(
    uow: UnitOfWork,
    actor: Actor,
    *,
    dossier_number: str,
    supplier_code: str,
    amount_seen: str | Decimal,
    reason: str,
    idempotency_key: str,
) -> int:
    """Make the difference left a supplier regulation on the dossier (a purchase line of that
    amount on its one confirmed service of the supplier); returns the regulation's id."""
    audit.require(
        uow.engine, actor, "regulation", REGULATION_ACTION, dossier_number if isinstance(dossier_number, str) else None
    )
    try:
        number, supplier = _pair(dossier_number, supplier_code)
        seen = parse_amount(amount_seen, "amount_seen")
        why = required_text(reason, "reason", MAX_REASON)
    except InvalidInput as error:
        audit.refuse(uow, actor, REGULATION_ACTION, dossier_number if isinstance(dossier_number, str) else None, error)
    arguments = {"dossier_number": number, "supplier_code": supplier, "amount_seen": str(seen), "reason": why}
    earlier = idempotency.claim(uow.conn, idempotency_key, REGULATION_ACTION, arguments, actor.login)
    if earlier is not None:
        return int(earlier["regulation_id"])
    dossier = _lock_dossier(uow, actor, REGULATION_ACTION, number)
    found = _current(uow, actor, REGULATION_ACTION, number, supplier, seen)
    kinds = (
        uow.conn.execute(
            sa.text(
                """SELECT kind FROM app.services
               WHERE dossier_number = :n AND supplier_code = :s AND status = 'confirmed'"""
            ),
            {"n": number, "s": supplier},
        )
        .scalars()
        .all()
    )
    if len(kinds) != 1:
        error = InvalidInput(
            "supplier_code",
            f"the dossier has {len(kinds)} confirmed services of {supplier}: "
            "apply the regulation from the dossier, on the service it concerns",
        )
        audit.refuse(uow, actor, REGULATION_ACTION, number, error)
    regulation_id = regulations.apply_regulation(
        uow,
        actor,
        dossier_number=number,
        supplier_code=supplier,
        service_kinds=[kinds[0]],
        mode="amount",
        purchase_value=str(found.remaining),
        sale_value="0",
        currency=found.currency,
        reason=why,
        expected_version=dossier.version,
        idempotency_key=f"{idempotency_key}/regulation",
    )
    # apply_regulation committed the regulation with the claim of our key; the result follows.
    audit.record(
        uow.conn,
        actor.login,
        REGULATION_ACTION,
        dossier_number=number,
        before={"supplier_code": supplier, "status": found.status, "difference": found.remaining},
        after={"regulation_id": regulation_id, "purchase_value": found.remaining, "currency": found.currency},
    )
    idempotency.store(uow.conn, idempotency_key, {"regulation_id": regulation_id})
    uow.commit()
    return regulation_id
