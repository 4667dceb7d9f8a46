"""Price adjustments: a manual sale or purchase line an allowed agent adds to a dossier, with a reason.

The line is immutable like every price line: a wrong adjustment is corrected by another one.
Adding it changes the Devis, so it bumps the dossier's `version` (a form opened before is refused
as stale) and stores the dossier's new sale total, computed as the Devis computes it.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from backoffice.db import sale_total
from backoffice.domain.errors import InvalidInput, NotFound, StaleVersion
from backoffice.domain.money import check_currency, parse_amount
from backoffice.domain.permissions import Actor
from backoffice.domain.text import required_text
from backoffice.services import audit, idempotency
from backoffice.services.unit_of_work import UnitOfWork

ACTION = "price_adjustment"
MAX_LABEL = 200
MAX_REASON = 500
MAX_QUANTITY = 10_000


def _quantity(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput("quantity", f"{value!r} is not a whole number")
    try:
        quantity = int(value)
    except ValueError:
        raise InvalidInput("quantity", f"{value!r} is not a whole number") from None
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidInput("quantity", f"must be between 1 and {MAX_QUANTITY}")
    return quantity


def _vat_rate(value: object) -> Decimal:
    if isinstance(value, bool | float):
        raise InvalidInput("vat_rate", f"{value!r} must be a decimal string such as '0.20', not a float")
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput("vat_rate", f"{value!r} is not a decimal rate") from None
    if not rate.is_finite() or not 0 <= rate <= 1:
        raise InvalidInput("vat_rate", f"{value!r} must be a rate between 0 and 1, such as '0.20'")
    if rate != rate.quantize(Decimal("0.0001")):
        raise InvalidInput("vat_rate", f"{value!r} has more than 4 decimals")
    return rate.quantize(Decimal("0.0001"))


def _checked(
    dossier_number: object,
    service_id: object,
    label: object,
    quantity: object,
    unit_sale_amount: object,
    unit_purchase_amount: object,
    purchase_currency: object,
    vat_rate: object,
    reason: object,
) -> dict[str, Any]:
    """The request in normal form, or InvalidInput naming the first bad field."""
    if not isinstance(dossier_number, str) or not dossier_number.strip():
        raise InvalidInput("dossier_number", "is required")
    if service_id is not None and not isinstance(service_id, str):
        raise InvalidInput("service_id", f"{service_id!r} is not a service id")
    sale = parse_amount(unit_sale_amount, "unit_sale_amount")
    purchase = parse_amount(unit_purchase_amount, "unit_purchase_amount")
    if sale == 0 and purchase == 0:
        raise InvalidInput("unit_sale_amount", "the sale or the purchase amount must be non-zero")
    return {
        "dossier_number": dossier_number.strip(),
        "service_id": (service_id or "").strip() or None,
        "label": required_text(label, "label", MAX_LABEL),
        "quantity": _quantity(quantity),
        "unit_sale_amount": sale,
        "unit_purchase_amount": purchase,
        "purchase_currency": None
        if purchase_currency in (None, "")
        else check_currency(purchase_currency, "purchase_currency"),
        "vat_rate": _vat_rate(vat_rate),
        "reason": required_text(reason, "reason", MAX_REASON),
    }


_INSERT = sa.text(
    """WITH n AS (SELECT nextval(pg_get_serial_sequence('app.price_lines', 'id')) AS id)
       INSERT INTO app.price_lines (
           id, dossier_number, service_id, line_id, origin, label, quantity, unit_sale_amount, sale_currency,
           unit_purchase_amount, purchase_currency, vat_rate, supplier_code, source_type, source_id, reason,
           created_by)
       SELECT n.id, :dossier_number, :service_id, 'ADJ-' || n.id, 'adjustment', :label, :quantity,
              :unit_sale_amount, :sale_currency, :unit_purchase_amount, :purchase_currency, :vat_rate,
              :supplier_code, 'price_adjustment', :key, :reason, :actor
       FROM n
       RETURNING id"""
)

# Bumps the version only if nobody changed the dossier since the agent read it.
_BUMP = sa.text(
    f"""UPDATE app.dossiers d SET version = d.version + 1, sale_total = t.sale_total
        FROM ({sale_total.FROM_TABLES}) t
        WHERE d.dossier_number = :number AND t.dossier_number = d.dossier_number AND d.version = :expected
        RETURNING d.version, d.sale_total"""
)


def add_price_adjustment(
    uow: UnitOfWork,
    actor: Actor,
    *,
    dossier_number: str,
    service_id: str | None = None,
    label: str,
    quantity: int | str,
    unit_sale_amount: str,
    unit_purchase_amount: str,
    purchase_currency: str | None = None,
    vat_rate: str,
    reason: str,
    expected_version: int,
    idempotency_key: str,
) -> int:
    """Add an adjustment line to the dossier's Devis; returns the new price line's id.

    A sale-only adjustment has a purchase amount of 0 and the other way round; a negative amount
    is a discount. The sale currency is the dossier's; the purchase currency defaults to it.
    """
    audit.require(uow.engine, actor, "price_adjustment", ACTION, dossier_number)
    try:
        request = _checked(
            dossier_number,
            service_id,
            label,
            quantity,
            unit_sale_amount,
            unit_purchase_amount,
            purchase_currency,
            vat_rate,
            reason,
        )
    except InvalidInput as error:
        audit.refuse(uow, actor, ACTION, dossier_number if isinstance(dossier_number, str) else None, error)
    number = request["dossier_number"]
    earlier = idempotency.claim(
        uow.conn, idempotency_key, ACTION, {**request, "expected_version": expected_version}, actor.login
    )
    if earlier is not None:
        return int(earlier["price_line_id"])
    dossier = uow.conn.execute(
        sa.text("SELECT currency, version, sale_total FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
    ).first()
    if dossier is None:
        audit.refuse(uow, actor, ACTION, number, NotFound(f"dossier {number} does not exist"))
    if dossier.version != expected_version:
        audit.refuse(uow, actor, ACTION, number, StaleVersion(f"dossier {number}", expected_version, dossier.version))
    supplier_code = None
    if request["service_id"] is not None:
        supplier_code = uow.conn.execute(
            sa.text("SELECT supplier_code FROM app.services WHERE dossier_number = :n AND service_id = :s"),
            {"n": number, "s": request["service_id"]},
        ).scalar()
        if supplier_code is None:
            error = InvalidInput("service_id", f"{request['service_id']} is not a service of dossier {number}")
            audit.refuse(uow, actor, ACTION, number, error)
    line = {
        **request,
        "sale_currency": dossier.currency,
        "purchase_currency": request["purchase_currency"] or dossier.currency,
        "supplier_code": supplier_code,
    }
    line_id = uow.conn.execute(_INSERT, {**line, "key": idempotency_key, "actor": actor.login}).scalar_one()
    bumped = uow.conn.execute(_BUMP, {"number": number, "expected": expected_version}).first()
    if bumped is None:
        # Someone changed the dossier between our read and this write; the refusal rolls ours back.
        current = uow.conn.execute(
            sa.text("SELECT version FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()
        audit.refuse(uow, actor, ACTION, number, StaleVersion(f"dossier {number}", expected_version, current))
    audit.record(
        uow.conn,
        actor.login,
        ACTION,
        dossier_number=number,
        before={"version": dossier.version, "sale_total": dossier.sale_total},
        after={
            "version": bumped.version,
            "sale_total": bumped.sale_total,
            "price_line_id": line_id,
            **{k: v for k, v in line.items() if k != "dossier_number"},
        },
    )
    idempotency.store(uow.conn, idempotency_key, {"price_line_id": line_id})
    uow.commit()
    return line_id
