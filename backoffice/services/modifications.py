"""Modifications and cancellations: a client's request an agent records and a senior agent decides.

`record_modification` stores the request (kind, the client's words, the price lines it adds, the
lines it cancels, the cancellation fees) as `pending`: the Devis does not change. It is tied to
the dossier's version of that moment. `validate_modification` either refuses it (who, why) or
validates it, which is refused if the dossier changed since the request was recorded; otherwise
it writes the lines (a cancelled line gets a reversal: a new line with the opposite amounts,
pointing at it), for a cancellation marks the dossier and its services cancelled, bumps the
dossier's version, stores the new sale total (backoffice.db.sale_total) and, for a cancellation,
the refund due; and it queues the mails to the client and to each supplier concerned, all in
one transaction.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from babel.numbers import format_currency
from sqlalchemy.engine import Connection

from backoffice.db import sale_total
from backoffice.domain.errors import DomainError, InvalidInput, NotFound, StaleVersion
from backoffice.domain.money import check_currency, parse_amount
from backoffice.domain.permissions import Actor
from backoffice.domain.text import required_text
from backoffice.mail import outbox
from backoffice.mail.templates import language_for
from backoffice.queries.search import MONEY_MOVING
from backoffice.services import audit, idempotency
from backoffice.services.unit_of_work import UnitOfWork

ACTION_RECORD = "record_modification"
ACTION_VALIDATE = "validate_modification"
ACTION_REFUSE = "refuse_modification"
KINDS = ("dates", "travellers", "services", "cancellation")
DECISIONS = ("validate", "refuse")
SOURCE_TYPE = "modification_request"
MAX_DESCRIPTION = 2000
MAX_LABEL = 200
MAX_REASON = 500
MAX_QUANTITY = 10_000
MAX_LINES = 50
ZERO = Decimal("0.00")
_BABEL_LOCALES = {"fr": "fr_FR", "en": "en_GB"}


class StaleRequest(StaleVersion):
    """The dossier changed after the request was recorded: its lines may no longer fit."""

    def __init__(self, number: str, recorded: int, current: int) -> None:
        DomainError.__init__(
            self,
            f"dossier {number} changed since this request was recorded (recorded on version {recorded}, now "
            f"{current}): its lines may no longer apply; refuse it and record the client's request again",
        )


@dataclass(frozen=True)
class RequestLine:
    seq: int
    action: str
    cancels_line_id: int | None
    service_id: str | None
    label: str
    quantity: int
    unit_sale_amount: Decimal
    sale_total: Decimal
    unit_purchase_amount: Decimal
    purchase_total: Decimal
    purchase_currency: str
    vat_rate: Decimal


@dataclass(frozen=True)
class ModificationRequest:
    id: int
    dossier_number: str
    kind: str
    description: str
    state: str
    version: int
    dossier_version: int
    recorded_by: str
    recorded_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    refusal_reason: str | None
    sale_total_after: Decimal | None
    refund_due: Decimal | None
    # For a pending cancellation: what would be refunded if it were validated now.
    refund_estimate: Decimal | None
    unmailed: tuple[dict[str, str], ...]
    lines: tuple[RequestLine, ...]


@dataclass(frozen=True)
class Decision:
    request_id: int
    state: str
    version: int
    sale_total_after: Decimal | None
    refund_due: Decimal | None
    mail_ids: tuple[int, ...]


# ---------------------------------------------------------------- input in normal form


def _whole(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(field, f"{value!r} is not a whole number")
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(field, f"{value!r} is not a whole number") from None
    if not low <= number <= high:
        raise InvalidInput(field, f"must be between {low} and {high}")
    return number


def _vat_rate(value: object) -> Decimal:
    if isinstance(value, bool | float):
        raise InvalidInput("vat_rate", f"{value!r} must be a decimal string such as '0.20', not a float")
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput("vat_rate", f"{value!r} is not a decimal rate") from None
    if not rate.is_finite() or not 0 <= rate <= 1 or rate != rate.quantize(Decimal("0.0001")):
        raise InvalidInput("vat_rate", f"{value!r} must be a rate between 0 and 1 with at most 4 decimals")
    return rate.quantize(Decimal("0.0001"))


def _price_line(value: object, is_fee: bool) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput("line", f"{value!r} is not a line")
    service_id = value.get("service_id")
    if service_id is not None and not isinstance(service_id, str):
        raise InvalidInput("service_id", f"{service_id!r} is not a service id")
    for field in ("unit_sale_amount", "unit_purchase_amount"):
        if value.get(field) in (None, ""):
            raise InvalidInput(field, "is required")
    sale = parse_amount(value["unit_sale_amount"], "unit_sale_amount")
    purchase = parse_amount(value["unit_purchase_amount"], "unit_purchase_amount")
    if is_fee and (sale < 0 or purchase < 0 or sale == purchase == 0):
        raise InvalidInput("unit_sale_amount", "a fee is positive: the sale or the purchase amount, or both")
    currency = value.get("purchase_currency")
    return {
        "service_id": (service_id or "").strip() or None,
        "label": required_text(value.get("label"), "label", MAX_LABEL),
        "quantity": _whole(value.get("quantity", 1), "quantity", 1, MAX_QUANTITY),
        "unit_sale_amount": sale,
        "unit_purchase_amount": purchase,
        "purchase_currency": None if currency in (None, "") else check_currency(currency, "purchase_currency"),
        "vat_rate": _vat_rate(value.get("vat_rate", "0")),
    }


def _lines(values: object, field: str, is_fee: bool) -> list[dict[str, Any]]:
    """Each line in normal form; a bad one is refused naming the list, the line and its field."""
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise InvalidInput(field, "must be a list of lines")
    if len(values) > MAX_LINES:
        raise InvalidInput(field, f"has more than {MAX_LINES} lines")
    checked = []
    for index, value in enumerate(values, start=1):
        try:
            checked.append(_price_line(value, is_fee))
        except InvalidInput as error:
            raise InvalidInput(field, f"line {index}, {error.field}: {error.problem}") from None
    return checked


def _cancelled_ids(values: object) -> list[int]:
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise InvalidInput("lines_to_cancel", "must be a list of price line ids")
    ids = [_whole(v, "lines_to_cancel", 1, 2**63 - 1) for v in values]
    if len(set(ids)) != len(ids):
        raise InvalidInput("lines_to_cancel", "names a line twice")
    return sorted(ids)


def _checked_request(
    dossier_number: object,
    kind: object,
    description: object,
    lines_to_add: object,
    lines_to_cancel: object,
    fee_lines: object,
) -> dict[str, Any]:
    if not isinstance(dossier_number, str) or not dossier_number.strip():
        raise InvalidInput("dossier_number", "is required")
    if kind not in KINDS:
        raise InvalidInput("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    request = {
        "dossier_number": dossier_number.strip(),
        "kind": kind,
        "description": required_text(description, "description", MAX_DESCRIPTION),
        "lines_to_add": _lines(lines_to_add, "lines_to_add", is_fee=False),
        "lines_to_cancel": _cancelled_ids(lines_to_cancel),
        "fee_lines": _lines(fee_lines, "fee_lines", is_fee=True),
    }
    if kind == "cancellation":
        # A cancellation cancels every line itself: the agent only states what it costs.
        if request["lines_to_add"]:
            raise InvalidInput("lines_to_add", "a cancellation adds fee lines, not lines to add")
        if request["lines_to_cancel"]:
            raise InvalidInput("lines_to_cancel", "a cancellation cancels every line of the dossier itself")
    elif request["fee_lines"]:
        raise InvalidInput("fee_lines", "only a cancellation has fee lines")
    return request


# ---------------------------------------------------------------- SQL

# Lines of the Devis that still count and can be cancelled: in the Devis (the current booking
# version, or any other origin), neither a reversal nor reversed, of a service not cancelled.
_OPEN_LINES = """
    SELECT l.id, l.service_id, l.origin
    FROM app.price_lines l
    JOIN app.dossiers d ON d.dossier_number = l.dossier_number
    LEFT JOIN app.services s ON s.dossier_number = l.dossier_number AND s.service_id = l.service_id
    WHERE l.dossier_number = :number
      AND (l.origin <> 'booking' OR l.booking_version = d.platform_version)
      AND l.reverses_id IS NULL
      AND NOT EXISTS (SELECT 1 FROM app.price_lines r WHERE r.reverses_id = l.id)
      AND s.status IS DISTINCT FROM 'cancelled'"""

_INSERT_REQUEST = sa.text(
    """INSERT INTO app.modification_requests (dossier_number, kind, description, dossier_version, recorded_by)
       VALUES (:dossier_number, :kind, :description, :dossier_version, :actor) RETURNING id"""
)
_INSERT_LINE = sa.text(
    """INSERT INTO app.modification_request_lines (request_id, seq, action, cancels_line_id, service_id, label,
           quantity, unit_sale_amount, unit_purchase_amount, purchase_currency, vat_rate)
       VALUES (:request_id, :seq, :action, :cancels_line_id, :service_id, :label, :quantity, :unit_sale_amount,
               :unit_purchase_amount, :purchase_currency, :vat_rate)"""
)

_COLUMNS = """dossier_number, service_id, line_id, origin, label, quantity, unit_sale_amount, sale_currency,
              unit_purchase_amount, purchase_currency, vat_rate, supplier_code, source_type, source_id, reason,
              created_by, reverses_id"""

# The request's lines to add and fees, as price lines.
_WRITE_LINES = sa.text(
    f"""WITH src AS (
            SELECT nextval(pg_get_serial_sequence('app.price_lines', 'id')) AS new_id, r.*
            FROM app.modification_request_lines r WHERE r.request_id = :request AND r.action IN ('add', 'fee'))
        INSERT INTO app.price_lines (id, {_COLUMNS})
        SELECT src.new_id, :number, src.service_id,
               CASE src.action WHEN 'add' THEN 'MOD-' ELSE 'FEE-' END || src.new_id,
               CASE src.action WHEN 'add' THEN 'modification' ELSE 'cancellation_fee' END,
               src.label, src.quantity, src.unit_sale_amount, :currency, src.unit_purchase_amount,
               src.purchase_currency, src.vat_rate, s.supplier_code, '{SOURCE_TYPE}', :source_id, :reason, :actor,
               NULL
        FROM src LEFT JOIN app.services s ON s.dossier_number = :number AND s.service_id = src.service_id"""
)

# A reversal of each line the request cancels (and, for a cancellation, of each open line
# without a service, which cancelling the services would not stop counting).
_WRITE_REVERSALS = sa.text(
    f"""WITH src AS (
            SELECT nextval(pg_get_serial_sequence('app.price_lines', 'id')) AS new_id, p.id AS old_id
            FROM app.price_lines p
            WHERE p.id IN (SELECT cancels_line_id FROM app.modification_request_lines
                           WHERE request_id = :request AND action = 'cancel')
               OR (CAST(:cancellation AS boolean) AND p.id IN (
                      SELECT o.id FROM ({_OPEN_LINES}) o
                      WHERE o.service_id IS NULL AND o.origin <> 'cancellation_fee')))
        INSERT INTO app.price_lines (id, {_COLUMNS})
        SELECT src.new_id, p.dossier_number, p.service_id, 'REV-' || src.new_id, 'modification', p.label,
               p.quantity, -p.unit_sale_amount, p.sale_currency, -p.unit_purchase_amount, p.purchase_currency,
               p.vat_rate, p.supplier_code, '{SOURCE_TYPE}', :source_id, :reason, :actor, p.id
        FROM src JOIN app.price_lines p ON p.id = src.old_id
        RETURNING reverses_id"""
)

_BUMP = sa.text(
    f"""UPDATE app.dossiers d SET version = d.version + 1, sale_total = t.sale_total
        FROM ({sale_total.FROM_TABLES}) t
        WHERE d.dossier_number = :number AND t.dossier_number = d.dossier_number
        RETURNING d.version, d.sale_total"""
)

_PAID = sa.text(
    """SELECT coalesce(sum(amount), 0) FROM app.dossier_payments
       WHERE dossier_number = :number AND status IN :moving"""
).bindparams(sa.bindparam("moving", expanding=True))

# Request lines as shown and mailed: a cancelled line carries the line it cancels, amounts negated.
_REQUEST_LINES = """
    SELECT r.request_id, r.seq, r.action, r.cancels_line_id,
           coalesce(r.service_id, p.service_id) AS service_id,
           coalesce(r.label, p.label) AS label,
           coalesce(r.quantity, p.quantity) AS quantity,
           coalesce(r.unit_sale_amount, -p.unit_sale_amount) AS unit_sale_amount,
           coalesce(r.quantity, p.quantity) * coalesce(r.unit_sale_amount, -p.unit_sale_amount) AS sale_total,
           coalesce(r.unit_purchase_amount, -p.unit_purchase_amount) AS unit_purchase_amount,
           coalesce(r.quantity, p.quantity) * coalesce(r.unit_purchase_amount, -p.unit_purchase_amount)
               AS purchase_total,
           coalesce(r.purchase_currency, p.purchase_currency) AS purchase_currency,
           coalesce(r.vat_rate, p.vat_rate) AS vat_rate
    FROM app.modification_request_lines r
    LEFT JOIN app.price_lines p ON p.id = r.cancels_line_id"""


def _request_lines(conn: Connection, request_ids: list[int]) -> dict[int, list[RequestLine]]:
    rows = conn.execute(
        sa.text(f"{_REQUEST_LINES} WHERE r.request_id IN :ids ORDER BY r.request_id, r.seq").bindparams(
            sa.bindparam("ids", expanding=True)
        ),
        {"ids": request_ids},
    ).mappings()
    grouped: dict[int, list[RequestLine]] = defaultdict(list)
    for row in rows:
        grouped[row["request_id"]].append(RequestLine(**{k: v for k, v in row.items() if k != "request_id"}))
    return grouped


# ---------------------------------------------------------------- record


def record_modification(
    uow: UnitOfWork,
    actor: Actor,
    *,
    dossier_number: str,
    kind: str,
    description: str,
    lines_to_add: Sequence[Mapping[str, Any]] = (),
    lines_to_cancel: Sequence[int | str] = (),
    fee_lines: Sequence[Mapping[str, Any]] = (),
    expected_version: int,
    idempotency_key: str,
) -> int:
    """Record a client's request as pending; returns its id. The Devis does not change.

    A line to add or a fee is a mapping with `label`, `quantity`, `unit_sale_amount`,
    `unit_purchase_amount`, `vat_rate` and optionally `service_id` and `purchase_currency`
    (default: the dossier's currency); amounts are decimal strings. `lines_to_cancel` are price
    line ids of the Devis. Only a cancellation has fee lines, and it has nothing else: it
    cancels every service and line of the dossier itself.
    """
    number_hint = dossier_number if isinstance(dossier_number, str) else None
    audit.require(uow.engine, actor, "record_modification", ACTION_RECORD, number_hint)
    try:
        request = _checked_request(dossier_number, kind, description, lines_to_add, lines_to_cancel, fee_lines)
    except InvalidInput as error:
        audit.refuse(uow, actor, ACTION_RECORD, number_hint, error)
    number = request["dossier_number"]
    earlier = idempotency.claim(
        uow.conn, idempotency_key, ACTION_RECORD, {**request, "expected_version": expected_version}, actor.login
    )
    if earlier is not None:
        return int(earlier["request_id"])
    dossier = uow.conn.execute(
        sa.text("SELECT currency, version, status FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
    ).first()
    if dossier is None:
        audit.refuse(uow, actor, ACTION_RECORD, number, NotFound(f"dossier {number} does not exist"))
    if dossier.version != expected_version:
        audit.refuse(
            uow, actor, ACTION_RECORD, number, StaleVersion(f"dossier {number}", expected_version, dossier.version)
        )
    if dossier.status == "cancelled":
        audit.refuse(
            uow, actor, ACTION_RECORD, number, InvalidInput("dossier_number", f"{number} is already cancelled")
        )
    services = dict(
        uow.conn.execute(
            sa.text("SELECT service_id, status FROM app.services WHERE dossier_number = :n"), {"n": number}
        ).all()
    )
    for field in ("lines_to_add", "fee_lines"):
        for index, line in enumerate(request[field], start=1):
            service = line["service_id"]
            if service is not None and service not in services:
                problem = f"line {index}, service_id: {service} is not a service of dossier {number}"
                audit.refuse(uow, actor, ACTION_RECORD, number, InvalidInput(field, problem))
            if field == "lines_to_add" and services.get(service) == "cancelled":
                problem = f"line {index}, service_id: service {service} is cancelled"
                audit.refuse(uow, actor, ACTION_RECORD, number, InvalidInput(field, problem))
    open_ids = set(uow.conn.execute(sa.text(f"SELECT id FROM ({_OPEN_LINES}) o"), {"number": number}).scalars())
    not_open = [line_id for line_id in request["lines_to_cancel"] if line_id not in open_ids]
    if not_open:
        problem = f"{', '.join(map(str, not_open))}: not a line of the Devis of dossier {number} that still counts"
        audit.refuse(uow, actor, ACTION_RECORD, number, InvalidInput("lines_to_cancel", problem))

    request_id = uow.conn.execute(
        _INSERT_REQUEST, {**request, "dossier_version": dossier.version, "actor": actor.login}
    ).scalar_one()
    rows = [
        *({"action": "add", **line} for line in request["lines_to_add"]),
        *({"action": "cancel", "cancels_line_id": line_id} for line_id in request["lines_to_cancel"]),
        *({"action": "fee", **line} for line in request["fee_lines"]),
    ]
    blank = dict.fromkeys(
        ("cancels_line_id", "service_id", "label", "quantity", "unit_sale_amount", "unit_purchase_amount",
         "purchase_currency", "vat_rate"),
    )  # fmt: skip
    for seq, row in enumerate(rows, start=1):
        if row["action"] != "cancel":
            row = {**row, "purchase_currency": row["purchase_currency"] or dossier.currency}
        uow.conn.execute(_INSERT_LINE, {**blank, **row, "request_id": request_id, "seq": seq})
    audit.record(
        uow.conn,
        actor.login,
        ACTION_RECORD,
        dossier_number=number,
        after={"request_id": request_id, "dossier_version": dossier.version, **request},
    )
    idempotency.store(uow.conn, idempotency_key, {"request_id": request_id})
    uow.commit()
    return request_id


# ---------------------------------------------------------------- decide


def _money(amount: Decimal, currency: str, language: str) -> str:
    return format_currency(amount, currency, locale=_BABEL_LOCALES[language])


def _change(line: RequestLine, language: str, currency: str, side: str) -> dict[str, Any]:
    """One line of a mail: what happened to which line, for how much (sale side to the client,
    purchase side to the supplier). A cancelled line shows the amount it no longer costs."""
    total = line.sale_total if side == "sale" else line.purchase_total
    amount = -total if line.action == "cancel" else total
    return {
        "action": line.action,
        "label": line.label,
        "quantity": line.quantity,
        "amount": _money(amount, currency if side == "sale" else line.purchase_currency, language),
    }


def _queue_mails(
    conn: Connection,
    actor: Actor,
    request: Any,
    dossier: Any,
    lines: list[RequestLine],
    cancelled_services: list[str],
    new_total: Decimal,
    refund: Decimal | None,
) -> tuple[list[int], list[dict[str, str]]]:
    """The client's mail and one per supplier concerned; returns the mail ids and who could not be mailed."""
    number, currency = dossier.dossier_number, dossier.currency
    mail_ids: list[int] = []
    unmailed: list[dict[str, str]] = []

    def send(recipient: str, address: str | None, kind: str, language: str, context: dict[str, Any]) -> None:
        if not address:
            unmailed.append({"recipient": recipient, "reason": "no e-mail address"})
            return
        try:
            outbox.validate_address(address)
        except InvalidInput as error:
            unmailed.append({"recipient": recipient, "reason": error.problem})
            return
        mail_ids.append(
            outbox.enqueue(
                conn,
                kind=kind,
                language=language,
                to_address=address,
                context=context,
                dossier_number=number,
                actor=actor.login,
            )
        )

    client_language = language_for(dossier.client_language)
    client = {"client_name": f"{dossier.client_first_name} {dossier.client_last_name}", "dossier_number": number}
    if request.kind == "cancellation":
        fees = sum((line.sale_total for line in lines if line.action == "fee"), ZERO)
        context = {
            **client,
            "fees": _money(fees, currency, client_language),
            "refund": _money(refund or ZERO, currency, client_language),
        }
        send("client", dossier.client_email, "cancellation_confirmed", client_language, context)
    else:
        context = {
            **client,
            "request": request.description,
            "changes": [_change(line, client_language, currency, "sale") for line in lines],
            "new_total": _money(new_total, currency, client_language),
        }
        send("client", dossier.client_email, "modification_validated", client_language, context)

    services = {
        row.service_id: row
        for row in conn.execute(
            sa.text(
                """SELECT s.service_id, s.label, s.supplier_code, s.supplier_reference, p.name, p.email, p.language
                   FROM app.services s LEFT JOIN app.suppliers p ON p.supplier_code = s.supplier_code
                   WHERE s.dossier_number = :n ORDER BY s.service_id"""
            ),
            {"n": number},
        )
    }
    concerned: dict[str, set[str]] = defaultdict(set)
    for service_id in [*cancelled_services, *(line.service_id for line in lines if line.service_id in services)]:
        concerned[services[service_id].supplier_code].add(service_id)
    for supplier_code, service_ids in sorted(concerned.items()):
        first = services[min(service_ids)]
        language = language_for(first.language)
        context = {
            "supplier_name": first.name or supplier_code,
            "supplier_reference": ", ".join(
                services[s].supplier_reference or services[s].label for s in sorted(service_ids)
            ),
            "dossier_number": number,
            "cancelled": request.kind == "cancellation",
            "cancelled_services": [services[s].label for s in sorted(service_ids) if s in cancelled_services],
            "changes": [
                _change(line, language, currency, "purchase") for line in lines if line.service_id in service_ids
            ],
        }
        send(f"supplier {supplier_code}", first.email, "supplier_modification", language, context)
    return mail_ids, unmailed


def _decision(result: Mapping[str, Any]) -> Decision:
    def amount(value: Any) -> Decimal | None:
        return None if value is None else Decimal(value)

    return Decision(
        request_id=int(result["request_id"]),
        state=result["state"],
        version=int(result["version"]),
        sale_total_after=amount(result["sale_total_after"]),
        refund_due=amount(result["refund_due"]),
        mail_ids=tuple(result["mail_ids"]),
    )


def validate_modification(
    uow: UnitOfWork,
    actor: Actor,
    *,
    request_id: int,
    decision: str,
    reason: str | None = None,
    expected_version: int,
    idempotency_key: str,
) -> Decision:
    """Validate (`decision="validate"`) or refuse (`"refuse"`, with a `reason`) a pending request.

    `expected_version` is the request's version as the senior agent saw it. Validation is
    refused with StaleRequest when the dossier changed since the request was recorded.
    """
    action = ACTION_REFUSE if decision == "refuse" else ACTION_VALIDATE
    number: str | None = None
    if isinstance(request_id, int) and not isinstance(request_id, bool):
        with uow.engine.connect() as conn:
            number = conn.execute(
                sa.text("SELECT dossier_number FROM app.modification_requests WHERE id = :id"), {"id": request_id}
            ).scalar()
    audit.require(uow.engine, actor, "validate_modification", action, number)
    try:
        if decision not in DECISIONS:
            raise InvalidInput("decision", f"{decision!r} is not one of {', '.join(DECISIONS)}")
        checked_id = _whole(request_id, "request_id", 1, 2**63 - 1)
        why = required_text(reason, "reason", MAX_REASON) if decision == "refuse" else None
    except InvalidInput as error:
        audit.refuse(uow, actor, action, number, error)
    arguments = {"request_id": checked_id, "decision": decision, "reason": why, "expected_version": expected_version}
    earlier = idempotency.claim(uow.conn, idempotency_key, ACTION_VALIDATE, arguments, actor.login)
    if earlier is not None:
        return _decision(earlier)
    request = uow.conn.execute(
        sa.text("SELECT * FROM app.modification_requests WHERE id = :id FOR UPDATE"), {"id": checked_id}
    ).first()
    if request is None:
        audit.refuse(uow, actor, action, None, NotFound(f"modification request {checked_id} does not exist"))
    number = request.dossier_number
    if request.version != expected_version:
        stale = StaleVersion(f"modification request {checked_id}", expected_version, request.version)
        audit.refuse(uow, actor, action, number, stale)
    if request.state != "pending":
        already = InvalidInput("request_id", f"request {checked_id} is already {request.state}")
        audit.refuse(uow, actor, action, number, already)
    before = {"request_id": checked_id, "state": request.state, "version": request.version}

    if decision == "refuse":
        decided = uow.conn.execute(
            sa.text(
                """UPDATE app.modification_requests
                   SET state = 'refused', version = version + 1, decided_by = :actor, decided_at = now(),
                       refusal_reason = :reason
                   WHERE id = :id RETURNING version"""
            ),
            {"id": checked_id, "actor": actor.login, "reason": why},
        ).scalar_one()
        result: dict[str, Any] = {
            "request_id": checked_id,
            "state": "refused",
            "version": decided,
            "sale_total_after": None,
            "refund_due": None,
            "mail_ids": [],
        }
        audit.record(
            uow.conn, actor.login, ACTION_REFUSE, dossier_number=number, before=before, after={**result, "reason": why}
        )
        idempotency.store(uow.conn, idempotency_key, result)
        uow.commit()
        return _decision(result)

    dossier = uow.conn.execute(
        sa.text("SELECT * FROM app.dossiers WHERE dossier_number = :n FOR UPDATE"), {"n": number}
    ).one()
    if dossier.version != request.dossier_version:
        audit.refuse(uow, actor, action, number, StaleRequest(number, request.dossier_version, dossier.version))
    cancellation = request.kind == "cancellation"
    written = {"request": checked_id, "number": number, "source_id": str(checked_id)}
    written |= {"reason": request.description, "actor": actor.login, "currency": dossier.currency}
    uow.conn.execute(_WRITE_LINES, written)
    reversed_ids = list(uow.conn.execute(_WRITE_REVERSALS, {**written, "cancellation": cancellation}).scalars())
    cancelled_services: list[str] = []
    if cancellation:
        cancelled_services = list(
            uow.conn.execute(
                sa.text(
                    """UPDATE app.services SET status = 'cancelled'
                       WHERE dossier_number = :n AND status <> 'cancelled' RETURNING service_id"""
                ),
                {"n": number},
            ).scalars()
        )
        uow.conn.execute(
            sa.text("UPDATE app.dossiers SET status = 'cancelled' WHERE dossier_number = :n"), {"n": number}
        )
    bumped = uow.conn.execute(_BUMP, {"number": number}).one()
    refund = None
    if cancellation:
        paid = uow.conn.execute(_PAID, {"number": number, "moving": list(MONEY_MOVING)}).scalar_one()
        refund = max(paid - bumped.sale_total, ZERO)
    lines = _request_lines(uow.conn, [checked_id])[checked_id]
    mail_ids, unmailed = _queue_mails(
        uow.conn, actor, request, dossier, lines, sorted(cancelled_services), bumped.sale_total, refund
    )
    decided = uow.conn.execute(
        sa.text(
            """UPDATE app.modification_requests
               SET state = 'validated', version = version + 1, decided_by = :actor, decided_at = now(),
                   sale_total_after = :total, refund_due = :refund, unmailed = CAST(:unmailed AS jsonb)
               WHERE id = :id RETURNING version"""
        ),
        {
            "id": checked_id,
            "actor": actor.login,
            "total": bumped.sale_total,
            "refund": refund,
            "unmailed": json.dumps(unmailed),
        },
    ).scalar_one()
    result = {
        "request_id": checked_id,
        "state": "validated",
        "version": decided,
        "sale_total_after": str(bumped.sale_total),
        "refund_due": None if refund is None else str(refund),
        "mail_ids": mail_ids,
    }
    audit.record(
        uow.conn,
        actor.login,
        ACTION_VALIDATE,
        dossier_number=number,
        before={
            **before,
            "dossier_version": dossier.version,
            "sale_total": dossier.sale_total,
            "status": dossier.status,
        },
        after={
            **result,
            "dossier_version": bumped.version,
            "reversed_line_ids": sorted(reversed_ids),
            "cancelled_services": sorted(cancelled_services),
            "unmailed": unmailed,
        },
    )
    idempotency.store(uow.conn, idempotency_key, result)
    uow.commit()
    return _decision(result)


# ---------------------------------------------------------------- read


def list_modifications(conn: Connection, dossier_number: str) -> list[ModificationRequest]:
    """The dossier's requests, newest first, each with its lines."""
    rows = conn.execute(
        sa.text(
            """SELECT m.*,
                      CASE WHEN m.kind = 'cancellation' AND m.state = 'pending' THEN greatest(
                          (SELECT coalesce(sum(amount), 0) FROM app.dossier_payments
                           WHERE dossier_number = m.dossier_number AND status IN :moving)
                          - (SELECT coalesce(sum(quantity * unit_sale_amount), 0)
                             FROM app.modification_request_lines WHERE request_id = m.id AND action = 'fee'),
                          0) END AS refund_estimate
               FROM app.modification_requests m WHERE m.dossier_number = :n ORDER BY m.id DESC"""
        ).bindparams(sa.bindparam("moving", expanding=True)),
        {"n": dossier_number, "moving": list(MONEY_MOVING)},
    ).mappings()
    requests = [dict(r) for r in rows]
    lines = _request_lines(conn, [r["id"] for r in requests]) if requests else {}
    fields = ModificationRequest.__dataclass_fields__
    return [
        ModificationRequest(
            **{k: v for k, v in r.items() if k in fields and k not in ("unmailed", "lines")},
            unmailed=tuple(r["unmailed"]),
            lines=tuple(lines.get(r["id"], ())),
        )
        for r in requests
    ]
