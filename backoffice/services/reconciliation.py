"""Reconciliation decisions on supplier invoice lines: confirm, reject, match by hand, undo, bulk confirm.

Every decision is a row of app.reconciliation_decisions (immutable, migration 0003); the marts
read them live, so the new state shows at once. A line is *open* while no `confirm` or `manual`
decision is in force on it, *reconciled* after one. On an open line an accountant confirms the
suggestion, rejects a candidate (that pair is not proposed again) or matches it by hand (to one
dossier, or split over several with an amount each that add up to the line's). `unreconcile`
undoes every decision in force on the line (a match, rejections, a withdrawal): one `unmatch` row
supersedes each, and the line goes back to what automatic matching proposes. On a line matched
automatically, with no decision in force, `unreconcile` withdraws the automatic match: one
`unmatch` row that supersedes nothing and names the dossier; the line is then never matched
automatically again (its next candidate is only suggested, or it is unmatched) until that
withdrawal is itself undone.

Concurrency: the page hands back the line's latest decision id as it read it (`expected_decision_id`,
None when there was none); the line row is locked, and a decision is refused as stale if another
one was recorded since. Bulk confirm re-checks the same for every line, in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NoReturn

import sqlalchemy as sa

from backoffice.domain.errors import DomainError, InvalidInput, NotFound, StaleVersion
from backoffice.domain.money import parse_amount
from backoffice.domain.permissions import Actor
from backoffice.queries import reconciliation as workbench
from backoffice.services import audit, idempotency
from backoffice.services.unit_of_work import UnitOfWork

ACTION = "reconciliation"  # every decision on one line; `detail` says which
BULK_ACTION = "reconciliation_bulk_confirm"  # the batch as a whole
MAX_REASON = 500
MAX_SPLIT = 20
MAX_BULK = 50_000

LineKey = tuple[str, str, int]


class SelectionChanged(DomainError):
    def __init__(self, expected: int, found: int) -> None:
        super().__init__(
            f"the filtered suggestions changed since they were counted ({expected} then, {found} now); "
            "count them again before confirming"
        )


def _refuse(uow: UnitOfWork, actor: Actor, error: DomainError, detail: str = "") -> NoReturn:
    audit.record_apart(
        uow.engine, actor.login, ACTION, outcome="refused", detail=f"{detail}: {error}" if detail else str(error)
    )
    raise error


def _line_key(supplier_code: object, invoice_number: object, line_number: object) -> LineKey:
    if not isinstance(supplier_code, str) or not supplier_code.strip():
        raise InvalidInput("supplier_code", "is required")
    if not isinstance(invoice_number, str) or not invoice_number.strip():
        raise InvalidInput("invoice_number", "is required")
    if isinstance(line_number, bool) or not isinstance(line_number, int) or line_number < 1:
        raise InvalidInput("line_number", f"{line_number!r} is not a line number")
    return (supplier_code.strip(), invoice_number.strip(), line_number)


def _dossier(value: object, field: str = "dossier_number") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, "is required")
    return value.strip().upper()


def _reason(value: object, required: bool) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        if required:
            raise InvalidInput("reason", "is required")
        return None
    if len(text) > MAX_REASON:
        raise InvalidInput("reason", f"is longer than {MAX_REASON} characters")
    return text


def _expected(value: object) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInput("expected_decision_id", f"{value!r} is not a decision id")
    return value


_LOCK_LINE = sa.text(
    """SELECT l.amount_incl_tax, i.currency, i.kind
       FROM app.supplier_invoice_lines l JOIN app.supplier_invoices i USING (supplier_code, invoice_number)
       WHERE l.supplier_code = :s AND l.invoice_number = :i AND l.line_number = :n
       FOR UPDATE OF l"""
)
_LINE_DECISIONS = sa.text(
    """SELECT d.id, d.decision, d.dossier_number, d.amount_incl_tax, d.supersedes_id,
              NOT EXISTS (SELECT 1 FROM app.reconciliation_decisions x WHERE x.supersedes_id = d.id) AS in_force
       FROM app.reconciliation_decisions d
       WHERE d.supplier_code = :s AND d.invoice_number = :i AND d.line_number = :n
       ORDER BY d.id"""
)
_INSERT = sa.text(
    """INSERT INTO app.reconciliation_decisions (supplier_code, invoice_number, line_number, decision,
           dossier_number, amount_incl_tax, decided_by, reason, supersedes_id)
       VALUES (:s, :i, :n, :decision, :dossier, :amount, :actor, :reason, :supersedes)
       RETURNING id"""
)


def _line_state(uow: UnitOfWork, actor: Actor, key: LineKey, expected: int | None, what: str) -> tuple[Any, list]:
    """Lock the line; return it and its decisions in force (matches, rejections, withdrawals of the
    automatic match; not the unmatch rows that undid a decision), or refuse."""
    params = {"s": key[0], "i": key[1], "n": key[2]}
    line = uow.conn.execute(_LOCK_LINE, params).first()
    if line is None:
        _refuse(uow, actor, NotFound(f"supplier invoice line {'/'.join(map(str, key))} does not exist"), what)
    decisions = uow.conn.execute(_LINE_DECISIONS, params).all()
    latest = decisions[-1].id if decisions else None
    if latest != expected:
        error = StaleVersion(f"supplier invoice line {'/'.join(map(str, key))}", expected or 0, latest or 0)
        _refuse(uow, actor, error, what)
    return line, [d for d in decisions if d.in_force and (d.decision != "unmatch" or d.supersedes_id is None)]


def _check_open(uow: UnitOfWork, actor: Actor, in_force: list, what: str) -> None:
    if any(d.decision in ("confirm", "manual") for d in in_force):
        _refuse(uow, actor, InvalidInput("line_number", "the line is already reconciled; unreconcile it first"), what)


def _check_dossiers(uow: UnitOfWork, actor: Actor, numbers: Sequence[str], what: str) -> None:
    found = set(
        uow.conn.execute(
            sa.text("SELECT dossier_number FROM app.dossiers WHERE dossier_number = ANY(:n)"), {"n": list(numbers)}
        ).scalars()
    )
    missing = [n for n in numbers if n not in found]
    if missing:
        _refuse(uow, actor, InvalidInput("dossier_number", f"dossier {missing[0]} does not exist"), what)


def _write(
    uow: UnitOfWork,
    actor: Actor,
    key: LineKey,
    decision: str,
    rows: Sequence[tuple[str, Decimal | None]],
    reason: str | None,
    supersedes: Sequence[int | None],
    before: Any,
) -> list[int]:
    ids = [
        uow.conn.execute(
            _INSERT,
            {
                "s": key[0],
                "i": key[1],
                "n": key[2],
                "decision": decision,
                "dossier": dossier,
                "amount": amount,
                "actor": actor.login,
                "reason": reason,
                "supersedes": superseded,
            },
        ).scalar_one()
        for (dossier, amount), superseded in zip(rows, supersedes, strict=True)
    ]
    for dossier in dict.fromkeys(d for d, _ in rows):
        audit.record(
            uow.conn,
            actor.login,
            ACTION,
            dossier_number=dossier,
            before=before,
            after={
                "line": "/".join(map(str, key)),
                "decision": decision,
                "decision_ids": ids,
                "allocations": [{"dossier_number": d, "amount_incl_tax": a} for d, a in rows],
                "reason": reason,
            },
            detail=decision,
        )
    return ids


def _before(in_force: list) -> list[dict[str, Any]]:
    return [
        {"decision_id": d.id, "decision": d.decision, "dossier_number": d.dossier_number, "amount": d.amount_incl_tax}
        for d in in_force
    ]


def _decide(
    uow: UnitOfWork,
    actor: Actor,
    decision: str,
    key_parts: tuple[object, object, object],
    request: dict[str, Any],
    idempotency_key: str,
    check: Any,
) -> list[int]:
    """The frame every single-line decision shares: permission, input, idempotency, lock, write."""
    audit.require(uow.engine, actor, "reconcile", ACTION)
    try:
        key = _line_key(*key_parts)
        expected = _expected(request.pop("expected_decision_id"))
        normal = check(request)
    except InvalidInput as error:
        _refuse(uow, actor, error, decision)
    write = normal.pop("_write")
    arguments = {"line": list(key), "decision": decision, "expected_decision_id": expected, **normal}
    earlier = idempotency.claim(
        uow.conn, idempotency_key, ACTION, json.loads(json.dumps(arguments, default=str)), actor.login
    )
    if earlier is not None:
        return list(earlier["decision_ids"])
    line, in_force = _line_state(uow, actor, key, expected, decision)
    ids = write(line, in_force, key)
    idempotency.store(uow.conn, idempotency_key, {"decision_ids": ids})
    uow.commit()
    return ids


def confirm(
    uow: UnitOfWork,
    actor: Actor,
    *,
    supplier_code: str,
    invoice_number: str,
    line_number: int,
    dossier_number: str,
    expected_decision_id: int | None,
    idempotency_key: str,
) -> int:
    """Confirm the dossier matching suggested (or matched automatically) for the line; returns the decision id."""

    def check(request: dict[str, Any]) -> dict[str, Any]:
        number = _dossier(request["dossier_number"])

        def write(line: Any, in_force: list, key: LineKey) -> list[int]:
            _check_open(uow, actor, in_force, "confirm")
            state, proposed = workbench.line_state(uow.conn, key) or ("", None)
            if state not in ("suggested", "auto_matched"):
                proposed = None
            if proposed != number:
                error = InvalidInput(
                    "dossier_number", f"{number} is not the dossier proposed for this line; match it by hand"
                )
                _refuse(uow, actor, error, "confirm")
            return _write(uow, actor, key, "confirm", [(number, None)], None, [None], _before(in_force))

        return {"dossier_number": number, "_write": write}

    request = {"dossier_number": dossier_number, "expected_decision_id": expected_decision_id}
    return _decide(
        uow, actor, "confirm", (supplier_code, invoice_number, line_number), request, idempotency_key, check
    )[0]


def reject(
    uow: UnitOfWork,
    actor: Actor,
    *,
    supplier_code: str,
    invoice_number: str,
    line_number: int,
    dossier_number: str,
    reason: str | None = None,
    expected_decision_id: int | None,
    idempotency_key: str,
) -> int:
    """Say the line does not belong to the dossier: matching never proposes that pair again."""

    def check(request: dict[str, Any]) -> dict[str, Any]:
        number = _dossier(request["dossier_number"])
        why = _reason(request["reason"], required=False)

        def write(line: Any, in_force: list, key: LineKey) -> list[int]:
            _check_open(uow, actor, in_force, "reject")
            if any(d.decision == "reject" and d.dossier_number == number for d in in_force):
                _refuse(
                    uow, actor, InvalidInput("dossier_number", f"{number} is already rejected for this line"), "reject"
                )
            _check_dossiers(uow, actor, [number], "reject")
            return _write(uow, actor, key, "reject", [(number, None)], why, [None], _before(in_force))

        return {"dossier_number": number, "reason": why, "_write": write}

    request = {"dossier_number": dossier_number, "reason": reason, "expected_decision_id": expected_decision_id}
    return _decide(uow, actor, "reject", (supplier_code, invoice_number, line_number), request, idempotency_key, check)[
        0
    ]


def _allocations(value: object) -> list[tuple[str, Decimal | None]]:
    """[(dossier, amount or None)]: one dossier may omit the amount (the whole line)."""
    if isinstance(value, str):
        value = [(value, None)]
    if not isinstance(value, Sequence) or not value:
        raise InvalidInput("allocations", "name at least one dossier")
    if len(value) > MAX_SPLIT:
        raise InvalidInput("allocations", f"at most {MAX_SPLIT} dossiers")
    result: list[tuple[str, Decimal | None]] = []
    for n, item in enumerate(value, 1):
        if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 2:
            raise InvalidInput("allocations", f"item {n} is not a (dossier, amount) pair")
        number = _dossier(item[0], f"allocations[{n}].dossier_number")
        amount = None if item[1] in (None, "") else parse_amount(item[1], f"allocations[{n}].amount")
        if amount is not None and amount <= 0:
            raise InvalidInput(f"allocations[{n}].amount", "must be positive (a credit note's kind gives the sign)")
        result.append((number, amount))
    numbers = [d for d, _ in result]
    if len(set(numbers)) != len(numbers):
        raise InvalidInput("allocations", "a dossier appears twice")
    if len(result) > 1 and any(a is None for _, a in result):
        raise InvalidInput("allocations", "a split over several dossiers needs an amount for each")
    return result


def manual_match(
    uow: UnitOfWork,
    actor: Actor,
    *,
    supplier_code: str,
    invoice_number: str,
    line_number: int,
    allocations: str | Sequence[tuple[str, str | None]],
    reason: str,
    expected_decision_id: int | None,
    idempotency_key: str,
) -> list[int]:
    """Match the line by hand: to one dossier (a number, or one pair with no amount), or split over
    several dossiers with amounts adding up to the line's amount. Several lines to one dossier are
    several calls. Returns the decision ids."""

    def check(request: dict[str, Any]) -> dict[str, Any]:
        split = _allocations(request["allocations"])
        why = _reason(request["reason"], required=True)

        def write(line: Any, in_force: list, key: LineKey) -> list[int]:
            _check_open(uow, actor, in_force, "manual")
            if len(split) > 1 and sum(a for _, a in split) != line.amount_incl_tax:
                error = InvalidInput(
                    "allocations",
                    f"the amounts add up to {sum(a for _, a in split)}, the line is {line.amount_incl_tax}",
                )
                _refuse(uow, actor, error, "manual")
            if len(split) == 1 and split[0][1] not in (None, line.amount_incl_tax):
                error = InvalidInput(
                    "allocations[1].amount", f"one dossier takes the whole line ({line.amount_incl_tax})"
                )
                _refuse(uow, actor, error, "manual")
            rows = [(d, a if len(split) > 1 else None) for d, a in split]
            _check_dossiers(uow, actor, [d for d, _ in rows], "manual")
            return _write(uow, actor, key, "manual", rows, why, [None] * len(rows), _before(in_force))

        return {"allocations": [[d, a] for d, a in split], "reason": why, "_write": write}

    request = {"allocations": allocations, "reason": reason, "expected_decision_id": expected_decision_id}
    return _decide(uow, actor, "manual", (supplier_code, invoice_number, line_number), request, idempotency_key, check)


def unreconcile(
    uow: UnitOfWork,
    actor: Actor,
    *,
    supplier_code: str,
    invoice_number: str,
    line_number: int,
    reason: str,
    expected_decision_id: int | None,
    idempotency_key: str,
) -> list[int]:
    """Undo every decision in force on the line (its match, its rejections, a withdrawal); on a line
    matched automatically with none, withdraw the automatic match. Returns the unmatch ids."""

    def check(request: dict[str, Any]) -> dict[str, Any]:
        why = _reason(request["reason"], required=True)

        def write(line: Any, in_force: list, key: LineKey) -> list[int]:
            if in_force:
                rows = [(d.dossier_number, None) for d in in_force]
                return _write(uow, actor, key, "unmatch", rows, why, [d.id for d in in_force], _before(in_force))
            state, matched = workbench.line_state(uow.conn, key) or ("", None)
            if state != "auto_matched" or matched is None:
                error = InvalidInput("line_number", "the line has no match nor decision to undo")
                _refuse(uow, actor, error, "unmatch")
            before = [{"state": state, "dossier_number": matched}]
            return _write(uow, actor, key, "unmatch", [(matched, None)], why, [None], before)

        return {"reason": why, "_write": write}

    request = {"reason": reason, "expected_decision_id": expected_decision_id}
    return _decide(uow, actor, "unmatch", (supplier_code, invoice_number, line_number), request, idempotency_key, check)


# ---------------------------------------------------------------- bulk confirm
def _selection_sql(clause: str) -> str:
    # The suggested lines the filters select, with their latest decision id as the page saw it.
    return f"""CREATE TEMP TABLE bulk_selection ON COMMIT DROP AS
        SELECT l.supplier_code, l.invoice_number, l.line_number, m.dossier_number,
               (SELECT max(d.id) FROM app.reconciliation_decisions d
                WHERE d.supplier_code = l.supplier_code AND d.invoice_number = l.invoice_number
                  AND d.line_number = l.line_number) AS latest
        FROM {workbench.FROM}
        WHERE {clause}"""


_LOCK_SELECTION = sa.text(
    """SELECT count(*) FROM (
           SELECT 1 FROM app.supplier_invoice_lines l
           JOIN bulk_selection b USING (supplier_code, invoice_number, line_number)
           ORDER BY l.supplier_code, l.invoice_number, l.line_number
           FOR UPDATE OF l) x"""
)
# A line decided by someone else between the count and the lock.
_CHANGED = sa.text(
    """SELECT count(*) FROM bulk_selection b
       WHERE EXISTS (SELECT 1 FROM app.reconciliation_decisions d
                     WHERE d.supplier_code = b.supplier_code AND d.invoice_number = b.invoice_number
                       AND d.line_number = b.line_number AND d.id > coalesce(b.latest, 0))"""
)
_INSERT_BULK = sa.text(
    """INSERT INTO app.reconciliation_decisions (supplier_code, invoice_number, line_number, decision,
           dossier_number, decided_by, reason)
       SELECT supplier_code, invoice_number, line_number, 'confirm', dossier_number, :actor, :reason
       FROM bulk_selection ORDER BY supplier_code, invoice_number, line_number"""
)
_AUDIT_BULK = sa.text(
    """INSERT INTO audit.events (actor, action, outcome, dossier_number, before, after, detail)
       SELECT :actor, :action, 'done', b.dossier_number, jsonb_build_object('state', 'suggested'),
              jsonb_build_object('line', b.supplier_code || '/' || b.invoice_number || '/' || b.line_number,
                                 'decision', 'confirm', 'batch_key', CAST(:key AS text)),
              'confirm (bulk)'
       FROM bulk_selection b"""
)


def bulk_confirm(
    uow: UnitOfWork,
    actor: Actor,
    *,
    filters: workbench.Filters,
    expected_count: int,
    idempotency_key: str,
) -> int:
    """Confirm every suggested line `filters` select, all or none; returns how many.

    `expected_count` is the count the accountant saw (workbench.count_suggestions): if the set
    changed since, or one of its lines got a decision, nothing is confirmed.
    """
    audit.require(uow.engine, actor, "reconcile", BULK_ACTION)
    try:
        if isinstance(filters, workbench.Filters):
            selected = workbench.Filters(**{**filters.checked().__dict__, "states": ("suggested",)})
            clause, params = workbench.where(selected)
        else:
            raise InvalidInput("filters", "are required")
        if isinstance(expected_count, bool) or not isinstance(expected_count, int) or expected_count < 1:
            raise InvalidInput("expected_count", f"{expected_count!r}: count the suggestions first")
        if expected_count > MAX_BULK:
            raise InvalidInput("expected_count", f"at most {MAX_BULK} lines at once; narrow the filters")
    except InvalidInput as error:
        audit.record_apart(uow.engine, actor.login, BULK_ACTION, outcome="refused", detail=str(error))
        raise
    request = {"filters": selected.as_json(), "expected_count": expected_count}
    earlier = idempotency.claim(
        uow.conn, idempotency_key, BULK_ACTION, json.loads(json.dumps(request, default=str)), actor.login
    )
    if earlier is not None:
        return int(earlier["confirmed"])
    conn = uow.conn
    conn.execute(sa.text(_selection_sql(clause)), params)
    found = conn.execute(_LOCK_SELECTION).scalar_one()
    changed = conn.execute(_CHANGED).scalar_one() if found == expected_count else 0
    if found != expected_count or changed:
        uow.rollback()
        error = SelectionChanged(expected_count, found - changed)
        audit.record_apart(uow.engine, actor.login, BULK_ACTION, outcome="refused", detail=str(error))
        raise error
    confirmed = conn.execute(_INSERT_BULK, {"actor": actor.login, "reason": "bulk confirm"}).rowcount
    conn.execute(_AUDIT_BULK, {"actor": actor.login, "action": ACTION, "key": idempotency_key})
    audit.record(conn, actor.login, BULK_ACTION, after={**request, "confirmed": confirmed, "key": idempotency_key})
    idempotency.store(conn, idempotency_key, {"confirmed": confirmed})
    uow.commit()
    return confirmed
