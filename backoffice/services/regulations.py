"""Supplier regulations: a price change a supplier asks for, on one dossier or on thousands at once.

A regulation names a supplier, one or more service kinds, and what changes: an amount per service
(in the regulation's currency) or a percentage of the service's active lines, for the purchase
and, when passed on to the client, for the sale. Each eligible dossier gets one price line per
matching service (origin 'regulation'), its version is bumped and its sale total recomputed
through backoffice/db/sale_total.py. A mass regulation is previewed first; the preview and the
apply compute the dossiers and the lines with the same SQL, and the apply is refused if the
result (or any dossier's version) changed since the preview. Everything is set-based and runs
in one transaction: all the dossiers or none. The undo is another regulation with the opposite
lines, pointing at the one it reverses.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
import sqlalchemy as sa

from backoffice.db import sale_total
from backoffice.domain.clock import accounting_today
from backoffice.domain.errors import DomainError, InvalidInput, NotFound, StaleVersion
from backoffice.domain.money import check_currency, parse_amount
from backoffice.domain.permissions import Actor
from backoffice.domain.text import required_text
from backoffice.queries import search
from backoffice.queries.criteria import SearchCriteria, to_dict, validate
from backoffice.services import audit, idempotency
from backoffice.services.unit_of_work import UnitOfWork

ACTION = "regulation"  # a single regulation, and the event of each dossier a mass one changed
MASS_ACTION = "mass_regulation"  # the mass regulation as a whole
UNDO_ACTION = "regulation_undo"
MODES = ("amount", "percent")
SERVICE_KINDS = ("flight", "hotel", "transfer", "car", "insurance", "activity", "cruise", "package")
MAX_REASON = 500
MAX_SUPPLIER = 50
MAX_NUMBER = 40
MAX_DOSSIERS = 50_000
MAX_PERCENT = Decimal("100")
# Why a selected dossier gets no line; 'not_found' is listed apart.
INELIGIBLE = {
    "cancelled": "the dossier is cancelled",
    "other_currency": "the dossier is in another currency than the regulation",
    "no_service": "no confirmed service of this supplier and kind",
    "mixed_currencies": "the service's purchases are in several currencies",
    "nothing_to_adjust": "the percentage gives 0.00 on every matching service",
}
# The request field a single regulation's refusal names, per reason.
_REASON_FIELD = {
    "cancelled": "dossier_number",
    "other_currency": "currency",
    "no_service": "supplier_code",
    "mixed_currencies": "mode",
    "nothing_to_adjust": "purchase_value",
}
Progress = Callable[[float, str], None]


class PreviewChanged(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "the selected dossiers changed since the preview (a dossier was added, removed or modified); "
            "preview again before applying"
        )


@dataclass(frozen=True)
class Adjustment:
    """A regulation's request in normal form."""

    supplier_code: str
    service_kinds: tuple[str, ...]
    mode: str
    purchase_value: Decimal
    sale_value: Decimal
    currency: str | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "supplier_code": self.supplier_code,
            "service_kinds": list(self.service_kinds),
            "mode": self.mode,
            "purchase_value": str(self.purchase_value),
            "sale_value": str(self.sale_value),
            "currency": self.currency,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Preview:
    """What applying would do; `token` must be handed back to `apply_mass_regulation`."""

    token: str
    eligible: tuple[str, ...]
    not_found: tuple[str, ...]
    not_eligible: tuple[tuple[str, str], ...]  # (dossier number, reason code of INELIGIBLE)
    duplicates: int  # numbers pasted more than once, counted once
    line_count: int
    purchase_totals: dict[str, Decimal]  # per currency
    sale_totals: dict[str, Decimal]  # per currency

    @property
    def selected(self) -> int:
        return len(self.eligible) + len(self.not_found) + len(self.not_eligible)


@dataclass(frozen=True)
class Regulation:
    id: int
    scope: str
    supplier_code: str
    service_kinds: tuple[str, ...]
    mode: str
    purchase_value: Decimal
    sale_value: Decimal
    currency: str | None
    reason: str
    dossier_count: int
    line_count: int
    created_by: str
    created_at: datetime
    reverses_regulation_id: int | None
    reversed_by: int | None


def _adjustment(
    supplier_code: object,
    service_kinds: object,
    mode: object,
    purchase_value: object,
    sale_value: object,
    currency: object,
    reason: object,
) -> Adjustment:
    """The request in normal form, or InvalidInput naming the first bad field."""
    supplier = required_text(supplier_code, "supplier_code", MAX_SUPPLIER)
    if isinstance(service_kinds, str) or not isinstance(service_kinds, Sequence) or not service_kinds:
        raise InvalidInput("service_kinds", "choose at least one service kind")
    unknown = [k for k in service_kinds if k not in SERVICE_KINDS]
    if unknown:
        raise InvalidInput("service_kinds", f"{unknown[0]!r} is not one of {', '.join(SERVICE_KINDS)}")
    if mode not in MODES:
        raise InvalidInput("mode", f"{mode!r} is not one of {', '.join(MODES)}")
    purchase = parse_amount(purchase_value, "purchase_value")
    sale = parse_amount(sale_value, "sale_value")
    if purchase == 0 and sale == 0:
        raise InvalidInput("purchase_value", "the purchase or the sale value must be non-zero")
    if mode == "percent":
        for field, value in (("purchase_value", purchase), ("sale_value", sale)):
            if not -MAX_PERCENT <= value <= MAX_PERCENT:
                raise InvalidInput(field, f"{value} % is not between -{MAX_PERCENT} and {MAX_PERCENT}")
    return Adjustment(
        supplier_code=supplier,
        service_kinds=tuple(sorted(set(service_kinds))),
        mode=mode,
        purchase_value=purchase,
        sale_value=sale,
        # A percentage follows the currency of each service's purchases.
        currency=check_currency(currency, "currency") if mode == "amount" else None,
        reason=required_text(reason, "reason", MAX_REASON),
    )


def parse_numbers(numbers: object) -> tuple[tuple[str, ...], int]:
    """Pasted dossier numbers (one per line, or separated by commas, semicolons or spaces),
    upper-cased, each kept once in the order given; returns them and how many repeats were dropped."""
    if isinstance(numbers, str):
        tokens = [t for t in re.split(r"[\s,;]+", numbers) if t]
    elif isinstance(numbers, Sequence) and all(isinstance(n, str) for n in numbers):
        tokens = [n.strip() for n in numbers if n.strip()]
    else:
        raise InvalidInput("numbers", "must be text or a list of dossier numbers")
    if not tokens:
        raise InvalidInput("numbers", "is required: paste at least one dossier number")
    too_long = next((t for t in tokens if len(t) > MAX_NUMBER), None)
    if too_long is not None:
        raise InvalidInput("numbers", f"{too_long[:MAX_NUMBER]!r}... is not a dossier number")
    unique = tuple(dict.fromkeys(t.upper() for t in tokens))
    if len(unique) > MAX_DOSSIERS:
        raise InvalidInput("numbers", f"{len(unique):,} numbers; a regulation takes at most {MAX_DOSSIERS:,}")
    return unique, len(tokens) - len(unique)


# ---------------------------------------------------------------- the plan, shared by preview and apply
_TEMP_TABLES = "regulation_selection, regulation_services, regulation_lines, regulation_outcome, regulation_totals"
_DROP_PLAN = f"DROP TABLE IF EXISTS {_TEMP_TABLES}"
_CREATE_SELECTION = (
    "CREATE TEMP TABLE regulation_selection (position integer NOT NULL, dossier_number text PRIMARY KEY) ON COMMIT DROP"
)

# Every confirmed service of the supplier and kinds in the selected, not cancelled dossiers, with
# the totals of its active lines (as the Devis counts them: booking lines of the current version,
# every line added here).
_SERVICES = """
CREATE TEMP TABLE regulation_services ON COMMIT DROP AS
SELECT s.dossier_number, s.service_id, d.currency AS sale_currency,
       t.purchase, t.sale, t.purchase_currencies, t.purchase_currency, coalesce(t.vat_rate, 0) AS vat_rate
FROM regulation_selection x
JOIN app.dossiers d ON d.dossier_number = x.dossier_number
JOIN app.services s ON s.dossier_number = d.dossier_number
CROSS JOIN LATERAL (
    SELECT coalesce(sum(l.purchase_total), 0) AS purchase,
           coalesce(sum(l.sale_total), 0) AS sale,
           count(DISTINCT l.purchase_currency) FILTER (WHERE l.unit_purchase_amount <> 0) AS purchase_currencies,
           min(l.purchase_currency) FILTER (WHERE l.unit_purchase_amount <> 0) AS purchase_currency,
           (array_agg(l.vat_rate ORDER BY l.id))[1] AS vat_rate
    FROM app.price_lines l
    WHERE l.dossier_number = s.dossier_number AND l.service_id = s.service_id
      AND (l.origin <> 'booking' OR l.booking_version = d.platform_version)
) t
WHERE s.supplier_code = :supplier_code AND s.kind = ANY(:kinds) AND s.status = 'confirmed'
  AND d.status <> 'cancelled'"""

_LINES = """
CREATE TEMP TABLE regulation_lines ON COMMIT DROP AS
SELECT dossier_number, service_id, sale_currency, vat_rate, purchase_currencies,
       CASE WHEN :mode = 'amount' THEN CAST(:purchase_value AS numeric)
            ELSE round(purchase * CAST(:purchase_value AS numeric) / 100, 2) END::numeric(14,2) AS unit_purchase_amount,
       CASE WHEN :mode = 'amount' THEN CAST(:sale_value AS numeric)
            ELSE round(sale * CAST(:sale_value AS numeric) / 100, 2) END::numeric(14,2) AS unit_sale_amount,
       CASE WHEN :mode = 'amount' THEN CAST(:currency AS text)
            ELSE coalesce(purchase_currency, sale_currency) END::char(3) AS purchase_currency
FROM regulation_services"""

_OUTCOME = """
CREATE TEMP TABLE regulation_outcome ON COMMIT DROP AS
SELECT x.position, x.dossier_number, d.version, d.sale_total,
       CASE WHEN d.dossier_number IS NULL THEN 'not_found'
            WHEN d.status = 'cancelled' THEN 'cancelled'
            WHEN :mode = 'amount' AND d.currency <> CAST(:currency AS text) THEN 'other_currency'
            WHEN a.dossier_number IS NULL THEN 'no_service'
            WHEN :mode = 'percent' AND CAST(:purchase_value AS numeric) <> 0 AND a.mixed THEN 'mixed_currencies'
            WHEN NOT a.something THEN 'nothing_to_adjust'
            ELSE 'eligible' END AS outcome
FROM regulation_selection x
LEFT JOIN app.dossiers d ON d.dossier_number = x.dossier_number
LEFT JOIN (
    SELECT dossier_number, bool_or(purchase_currencies > 1) AS mixed,
           bool_or(unit_purchase_amount <> 0 OR unit_sale_amount <> 0) AS something
    FROM regulation_lines GROUP BY dossier_number
) a ON a.dossier_number = x.dossier_number"""

# Only the eligible dossiers' lines that change something are written.
_TO_WRITE = """
FROM regulation_lines l JOIN regulation_outcome o ON o.dossier_number = l.dossier_number
WHERE o.outcome = 'eligible' AND (l.unit_purchase_amount <> 0 OR l.unit_sale_amount <> 0)"""

# The fingerprint of a plan: every selected dossier with its version and outcome, every line.
_FINGERPRINT = f"""
SELECT encode(sha256(convert_to(
    (SELECT coalesce(string_agg(concat_ws(':', dossier_number, version, sale_total, outcome), ','
                                ORDER BY dossier_number), '') FROM regulation_outcome)
    || '/' ||
    (SELECT coalesce(string_agg(concat_ws(':', l.dossier_number, l.service_id, l.unit_purchase_amount,
                                          l.purchase_currency, l.unit_sale_amount, l.sale_currency, l.vat_rate), ','
                                ORDER BY l.dossier_number, l.service_id), '') {_TO_WRITE}),
    'UTF8')), 'hex')"""

_TOTALS = f"""
SELECT 'purchase' AS side, l.purchase_currency AS currency, count(*) AS lines, sum(l.unit_purchase_amount) AS total
{_TO_WRITE} GROUP BY l.purchase_currency
UNION ALL
SELECT 'sale', l.sale_currency, count(*), sum(l.unit_sale_amount) {_TO_WRITE} GROUP BY l.sale_currency"""


def _pg(uow: UnitOfWork) -> psycopg.Connection:
    return uow.conn.connection.driver_connection  # type: ignore[return-value]


def _select_numbers(uow: UnitOfWork, numbers: tuple[str, ...]) -> None:
    uow.conn.execute(sa.text(_DROP_PLAN))
    uow.conn.execute(sa.text(_CREATE_SELECTION))
    with _pg(uow).cursor() as cur, cur.copy("COPY regulation_selection (position, dossier_number) FROM STDIN") as copy:
        for position, number in enumerate(numbers, start=1):
            copy.write_row((position, number))


def _select_criteria(uow: UnitOfWork, criteria: SearchCriteria, today: date) -> None:
    """Every dossier the Liste would show for `criteria`, not one page."""
    # The Liste's own filter, so the selection is exactly what the agent searched.
    matching, params = search.matching_numbers_sql(criteria, today=today)
    uow.conn.execute(sa.text(_DROP_PLAN))
    uow.conn.execute(sa.text(_CREATE_SELECTION))
    uow.conn.execute(
        sa.text(
            f"""INSERT INTO regulation_selection (position, dossier_number)
                SELECT row_number() OVER (ORDER BY m.dossier_number), m.dossier_number FROM ({matching}) m"""
        ),
        params,
    )


def _plan(uow: UnitOfWork, adjustment: Adjustment) -> str:
    """Fill the plan's temp tables from regulation_selection; returns the plan's fingerprint."""
    params = {
        "supplier_code": adjustment.supplier_code,
        "kinds": list(adjustment.service_kinds),
        "mode": adjustment.mode,
        "purchase_value": adjustment.purchase_value,
        "sale_value": adjustment.sale_value,
        "currency": adjustment.currency,
    }
    conn = uow.conn
    conn.execute(sa.text("ANALYZE regulation_selection"))
    conn.execute(sa.text(_SERVICES), params)
    conn.execute(sa.text(_LINES), params)
    conn.execute(sa.text("ANALYZE regulation_lines"))
    conn.execute(sa.text(_OUTCOME), params)
    conn.execute(sa.text("ANALYZE regulation_outcome"))
    data_hash = conn.execute(sa.text(_FINGERPRINT)).scalar_one()
    # The token binds the request too: a preview is only good for the adjustment it showed.
    request = json.dumps(adjustment.as_json(), sort_keys=True)
    return hashlib.sha256(f"{data_hash}/{request}".encode()).hexdigest()


def _read_preview(uow: UnitOfWork, token: str, duplicates: int) -> Preview:
    eligible: list[str] = []
    not_found: list[str] = []
    not_eligible: list[tuple[str, str]] = []
    rows = uow.conn.execute(sa.text("SELECT dossier_number, outcome FROM regulation_outcome ORDER BY position"))
    for number, outcome in rows:
        if outcome == "eligible":
            eligible.append(number)
        elif outcome == "not_found":
            not_found.append(number)
        else:
            not_eligible.append((number, outcome))
    purchase: dict[str, Decimal] = {}
    sale: dict[str, Decimal] = {}
    line_count = 0
    for side, currency, lines, total in uow.conn.execute(sa.text(_TOTALS)):
        if side == "purchase":
            purchase[currency] = total
            line_count += lines
        else:
            sale[currency] = total
    return Preview(
        token=token,
        eligible=tuple(eligible),
        not_found=tuple(not_found),
        not_eligible=tuple(not_eligible),
        duplicates=duplicates,
        line_count=line_count,
        purchase_totals=purchase,
        sale_totals=sale,
    )


# ---------------------------------------------------------------- writing
_INSERT_REGULATION = sa.text(
    """INSERT INTO app.regulations (scope, supplier_code, service_kinds, mode, purchase_value, sale_value, currency,
                                   reason, reverses_regulation_id, dossier_count, line_count, created_by)
       VALUES (:scope, :supplier_code, :kinds, :mode, :purchase_value, :sale_value, :currency, :reason, :reverses,
               :dossier_count, :line_count, :actor)
       RETURNING id"""
)

_INSERT_LINES = sa.text(
    f"""INSERT INTO app.price_lines (
            dossier_number, service_id, line_id, origin, label, quantity, unit_sale_amount, sale_currency,
            unit_purchase_amount, purchase_currency, vat_rate, supplier_code, source_type, source_id, reason,
            created_by)
        SELECT l.dossier_number, l.service_id, 'REG-' || :rid || '-' || l.service_id, 'regulation', :label, 1,
               l.unit_sale_amount, l.sale_currency, l.unit_purchase_amount, l.purchase_currency, l.vat_rate,
               :supplier_code, 'regulation', CAST(:rid AS text), :reason, :actor
        {_TO_WRITE}"""
)

# The eligible dossiers' new version and sale total, only where the version is still the one the
# plan read; app.regulation_dossiers keeps the before and after.
_ELIGIBLE = "(SELECT dossier_number FROM regulation_outcome WHERE outcome = 'eligible')"
_TOTALS_AFTER = sale_total.active_sale_total(
    _ELIGIBLE,
    f"""(SELECT l.dossier_number, l.service_id, l.origin, l.sale_total
         FROM app.price_lines l JOIN app.dossiers o ON o.dossier_number = l.dossier_number
         WHERE l.dossier_number IN {_ELIGIBLE}
           AND (l.origin <> 'booking' OR l.booking_version = o.platform_version))""",
    f"""(SELECT dossier_number, service_id FROM app.services
         WHERE dossier_number IN {_ELIGIBLE} AND status = 'cancelled')""",
)
# Kept in a temp table of its own: joined straight to app.dossiers on (number, version), the
# planner, misled by the versions' statistics, re-ran this aggregate once per dossier.
_NEW_TOTALS = f"""
CREATE TEMP TABLE regulation_totals ON COMMIT DROP AS
SELECT o.dossier_number, o.version, o.sale_total AS sale_total_before, t.sale_total
FROM regulation_outcome o JOIN ({_TOTALS_AFTER}) t ON t.dossier_number = o.dossier_number"""
_BUMP = sa.text(
    """WITH bumped AS (
            UPDATE app.dossiers d SET version = d.version + 1, sale_total = t.sale_total
            FROM regulation_totals t
            WHERE d.dossier_number = t.dossier_number AND d.version = t.version
            RETURNING d.dossier_number, t.version AS version_before, d.version, t.sale_total_before, d.sale_total)
        INSERT INTO app.regulation_dossiers (regulation_id, dossier_number, version_before, version_after,
                                             sale_total_before, sale_total_after)
        SELECT :rid, dossier_number, version_before, version, sale_total_before, sale_total FROM bumped"""
)

# One audit event per dossier, as audit.record would write it (amounts as decimal strings).
_AUDIT_DOSSIERS = sa.text(
    """INSERT INTO audit.events (actor, action, outcome, dossier_number, before, after)
       SELECT :actor, :action, 'done', r.dossier_number,
              jsonb_build_object('version', r.version_before, 'sale_total', r.sale_total_before::text),
              jsonb_build_object('version', r.version_after, 'sale_total', r.sale_total_after::text,
                                 'regulation_id', r.regulation_id) || CAST(:request AS jsonb)
       FROM app.regulation_dossiers r WHERE r.regulation_id = :rid"""
)


def _write(
    uow: UnitOfWork,
    actor: Actor,
    *,
    scope: str,
    adjustment: Adjustment,
    reverses: int | None,
    dossier_count: int,
    line_count: int,
    insert_lines: sa.TextClause,
    label: str,
    progress: Progress,
    extra: dict[str, Any] | None = None,
) -> tuple[int, int]:
    """Write the regulation, its lines, the dossiers' new versions and totals, and their audit
    events, from regulation_outcome; returns (regulation id, dossiers changed)."""
    conn = uow.conn
    rid = conn.execute(
        _INSERT_REGULATION,
        {
            "scope": scope,
            "supplier_code": adjustment.supplier_code,
            "kinds": list(adjustment.service_kinds),
            "mode": adjustment.mode,
            "purchase_value": adjustment.purchase_value,
            "sale_value": adjustment.sale_value,
            "currency": adjustment.currency,
            "reason": adjustment.reason,
            "reverses": reverses,
            "dossier_count": dossier_count,
            "line_count": line_count,
            "actor": actor.login,
        },
    ).scalar_one()
    progress(0.45, "lines")
    written = conn.execute(
        insert_lines,
        {
            "rid": rid,
            "label": label,
            "supplier_code": adjustment.supplier_code,
            "reason": adjustment.reason,
            "actor": actor.login,
            **(extra or {}),
        },
    ).rowcount
    if written != line_count:
        raise PreviewChanged()
    progress(0.65, "dossiers")
    conn.execute(sa.text(_NEW_TOTALS))
    conn.execute(sa.text("ANALYZE regulation_totals"))
    changed = conn.execute(_BUMP, {"rid": rid}).rowcount
    progress(0.85, "audit")
    request = {**adjustment.as_json(), "scope": scope, "reverses_regulation_id": reverses}
    action = UNDO_ACTION if reverses else ACTION
    conn.execute(_AUDIT_DOSSIERS, {"actor": actor.login, "action": action, "rid": rid, "request": json.dumps(request)})
    return rid, changed


def _no_progress(fraction: float, phase: str) -> None:
    pass


# ---------------------------------------------------------------- public functions
def preview_mass_regulation(
    uow: UnitOfWork,
    actor: Actor,
    *,
    supplier_code: str,
    service_kinds: Sequence[str],
    mode: str,
    purchase_value: str,
    sale_value: str = "0",
    currency: str | None = None,
    reason: str,
    numbers: str | Sequence[str] | None = None,
    criteria: SearchCriteria | None = None,
    today: date | None = None,
) -> Preview:
    """What a mass regulation would do to the dossiers given by number or found by `criteria`.

    Reads only: nothing is written (the refusals are audited)."""
    audit.require(uow.engine, actor, "mass_regulation", MASS_ACTION)
    try:
        adjustment = _adjustment(supplier_code, service_kinds, mode, purchase_value, sale_value, currency, reason)
        duplicates = _select(uow, numbers, criteria, today or accounting_today())
    except InvalidInput as error:
        audit.refuse(uow, actor, MASS_ACTION, None, error)
    token = _plan(uow, adjustment)
    preview = _read_preview(uow, token, duplicates)
    uow.rollback()  # drop the plan's temp tables
    return preview


def _select(uow: UnitOfWork, numbers: object, criteria: SearchCriteria | None, today: date) -> int:
    """Fill regulation_selection from the numbers or the criteria; returns the repeats dropped."""
    if (numbers is None) == (criteria is None):
        raise InvalidInput("numbers", "give either dossier numbers or search criteria")
    if criteria is not None:
        criteria = validate(criteria)
        if criteria.is_empty():
            raise InvalidInput("criteria", "at least one search criterion is required")
        _select_criteria(uow, criteria, today)
        found = uow.conn.execute(sa.text("SELECT count(*) FROM regulation_selection")).scalar_one()
        if found > MAX_DOSSIERS:
            raise InvalidInput("criteria", f"{found:,} dossiers match; a regulation takes at most {MAX_DOSSIERS:,}")
        return 0
    unique, duplicates = parse_numbers(numbers)
    _select_numbers(uow, unique)
    return duplicates


def apply_mass_regulation(
    uow: UnitOfWork,
    actor: Actor,
    *,
    supplier_code: str,
    service_kinds: Sequence[str],
    mode: str,
    purchase_value: str,
    sale_value: str = "0",
    currency: str | None = None,
    reason: str,
    numbers: str | Sequence[str] | None = None,
    criteria: SearchCriteria | None = None,
    preview_token: str,
    idempotency_key: str,
    today: date | None = None,
    progress: Progress = _no_progress,
) -> int:
    """Apply the regulation the preview `preview_token` showed to all its eligible dossiers, or to
    none; returns the regulation's id. `progress(fraction, phase)` follows the phases."""
    audit.require(uow.engine, actor, "mass_regulation", MASS_ACTION)
    try:
        adjustment = _adjustment(supplier_code, service_kinds, mode, purchase_value, sale_value, currency, reason)
        if not isinstance(preview_token, str) or not preview_token:
            raise InvalidInput("preview_token", "is required: preview the regulation first")
        selection = (
            {"numbers": list(parse_numbers(numbers)[0])}
            if criteria is None
            else {"criteria": to_dict(validate(criteria))}
        )
    except InvalidInput as error:
        audit.refuse(uow, actor, MASS_ACTION, None, error)
    arguments = {**adjustment.as_json(), **selection, "preview_token": preview_token}
    earlier = idempotency.claim(uow.conn, idempotency_key, MASS_ACTION, arguments, actor.login)
    if earlier is not None:
        return int(earlier["regulation_id"])
    progress(0.05, "selection")
    try:
        duplicates = _select(uow, numbers, criteria, today or accounting_today())
    except InvalidInput as error:
        audit.refuse(uow, actor, MASS_ACTION, None, error)
    progress(0.15, "plan")
    if _plan(uow, adjustment) != preview_token:
        audit.refuse(uow, actor, MASS_ACTION, None, PreviewChanged())
    preview = _read_preview(uow, preview_token, duplicates)
    if not preview.eligible:
        audit.refuse(uow, actor, MASS_ACTION, None, InvalidInput("numbers", "no selected dossier is eligible"))
    try:
        rid, changed = _write(
            uow,
            actor,
            scope="mass",
            adjustment=adjustment,
            reverses=None,
            dossier_count=len(preview.eligible),
            line_count=preview.line_count,
            insert_lines=_INSERT_LINES,
            label=f"Supplier regulation {adjustment.supplier_code}",
            progress=progress,
        )
        if changed != len(preview.eligible):
            raise PreviewChanged()  # a dossier changed between the plan and the write
    except PreviewChanged as error:
        uow.rollback()
        audit.refuse(uow, actor, MASS_ACTION, None, error)
    audit.record(
        uow.conn,
        actor.login,
        MASS_ACTION,
        after={
            "regulation_id": rid,
            **adjustment.as_json(),
            **({"criteria": selection["criteria"]} if "criteria" in selection else {}),
            "selected": preview.selected,
            "dossiers": changed,
            "lines": preview.line_count,
            "not_found": list(preview.not_found),
            "not_eligible": [list(pair) for pair in preview.not_eligible],
            "purchase_totals": preview.purchase_totals,
            "sale_totals": preview.sale_totals,
        },
    )
    idempotency.store(uow.conn, idempotency_key, {"regulation_id": rid})
    progress(0.95, "commit")
    uow.commit()
    progress(1.0, "done")
    return rid


def apply_regulation(
    uow: UnitOfWork,
    actor: Actor,
    *,
    dossier_number: str,
    supplier_code: str,
    service_kinds: Sequence[str],
    mode: str,
    purchase_value: str,
    sale_value: str = "0",
    currency: str | None = None,
    reason: str,
    expected_version: int,
    idempotency_key: str,
) -> int:
    """Apply a supplier regulation to one dossier, as it was at `expected_version`; returns the
    regulation's id. A dossier that is not eligible is refused with the reason, naming the field."""
    number = dossier_number.strip().upper() if isinstance(dossier_number, str) else None
    audit.require(uow.engine, actor, "regulation", ACTION, number)
    try:
        if not number:
            raise InvalidInput("dossier_number", "is required")
        adjustment = _adjustment(supplier_code, service_kinds, mode, purchase_value, sale_value, currency, reason)
    except InvalidInput as error:
        audit.refuse(uow, actor, ACTION, number, error)
    arguments = {**adjustment.as_json(), "dossier_number": number, "expected_version": expected_version}
    earlier = idempotency.claim(uow.conn, idempotency_key, ACTION, arguments, actor.login)
    if earlier is not None:
        return int(earlier["regulation_id"])
    version = uow.conn.execute(
        sa.text("SELECT version FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
    ).scalar()
    if version is None:
        audit.refuse(uow, actor, ACTION, number, NotFound(f"dossier {number} does not exist"))
    if version != expected_version:
        audit.refuse(uow, actor, ACTION, number, StaleVersion(f"dossier {number}", expected_version, version))
    _select_numbers(uow, (number,))
    _plan(uow, adjustment)
    preview = _read_preview(uow, "", 0)
    if preview.not_eligible:
        reason_code = preview.not_eligible[0][1]
        audit.refuse(uow, actor, ACTION, number, InvalidInput(_REASON_FIELD[reason_code], INELIGIBLE[reason_code]))
    rid, changed = _write(
        uow,
        actor,
        scope="single",
        adjustment=adjustment,
        reverses=None,
        dossier_count=1,
        line_count=preview.line_count,
        insert_lines=_INSERT_LINES,
        label=f"Supplier regulation {adjustment.supplier_code}",
        progress=_no_progress,
    )
    if changed != 1:
        # Someone changed the dossier between our read and this write; the refusal rolls ours back.
        current = uow.conn.execute(
            sa.text("SELECT version FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()
        uow.rollback()
        audit.refuse(uow, actor, ACTION, number, StaleVersion(f"dossier {number}", expected_version, current))
    idempotency.store(uow.conn, idempotency_key, {"regulation_id": rid})
    uow.commit()
    return rid


# The undo: the opposite of every line the regulation added, on every dossier it changed.
_UNDO_OUTCOME = sa.text(
    """CREATE TEMP TABLE regulation_outcome ON COMMIT DROP AS
        SELECT row_number() OVER (ORDER BY d.dossier_number) AS position, d.dossier_number, d.version, d.sale_total,
               'eligible' AS outcome
        FROM app.dossiers d JOIN app.regulation_dossiers r ON r.dossier_number = d.dossier_number
        WHERE r.regulation_id = :original"""
)
_LOCK_DOSSIERS = sa.text(
    """SELECT d.dossier_number FROM app.dossiers d JOIN app.regulation_dossiers r ON r.dossier_number = d.dossier_number
       WHERE r.regulation_id = :original ORDER BY d.dossier_number FOR UPDATE OF d"""
)
_INSERT_UNDO_LINES = sa.text(
    """INSERT INTO app.price_lines (
           dossier_number, service_id, line_id, origin, label, quantity, unit_sale_amount, sale_currency,
           unit_purchase_amount, purchase_currency, vat_rate, supplier_code, source_type, source_id, reverses_id,
           reason, created_by)
       SELECT l.dossier_number, l.service_id, 'REG-' || :rid || '-' || l.service_id, 'regulation', :label,
              l.quantity, -l.unit_sale_amount, l.sale_currency, -l.unit_purchase_amount, l.purchase_currency,
              l.vat_rate, :supplier_code, 'regulation', CAST(:rid AS text), l.id, :reason, :actor
       FROM app.price_lines l
       WHERE l.source_type = 'regulation' AND l.source_id = CAST(:original AS text)"""
)


def undo_regulation(
    uow: UnitOfWork,
    actor: Actor,
    *,
    regulation_id: int,
    reason: str,
    idempotency_key: str,
    progress: Progress = _no_progress,
) -> int:
    """Reverse regulation `regulation_id` on every dossier it changed, with opposite lines that
    point at the lines they reverse; returns the reversing regulation's id. A regulation is undone
    once; an undo is not undone (apply the regulation again instead)."""
    if not (actor.can("regulation") or actor.can("mass_regulation")):
        audit.require(uow.engine, actor, "regulation", UNDO_ACTION)
    if isinstance(regulation_id, bool) or not isinstance(regulation_id, int):
        audit.refuse(uow, actor, UNDO_ACTION, None, InvalidInput("regulation_id", f"{regulation_id!r} is not an id"))
    original = uow.conn.execute(
        sa.text(
            """SELECT r.*, (SELECT u.id FROM app.regulations u WHERE u.reverses_regulation_id = r.id) AS reversed_by
               FROM app.regulations r WHERE r.id = :id FOR UPDATE"""
        ),
        {"id": regulation_id},
    ).first()
    if original is None:
        audit.refuse(uow, actor, UNDO_ACTION, None, NotFound(f"regulation {regulation_id} does not exist"))
    # Undoing a mass regulation is itself a mass change.
    audit.require(uow.engine, actor, "mass_regulation" if original.scope == "mass" else "regulation", UNDO_ACTION)
    try:
        text = required_text(reason, "reason", MAX_REASON)
        if original.reverses_regulation_id is not None:
            raise InvalidInput("regulation_id", f"regulation {regulation_id} is an undo; apply a new regulation")
    except InvalidInput as error:
        audit.refuse(uow, actor, UNDO_ACTION, None, error)
    earlier = idempotency.claim(
        uow.conn, idempotency_key, UNDO_ACTION, {"regulation_id": regulation_id, "reason": text}, actor.login
    )
    if earlier is not None:
        return int(earlier["regulation_id"])
    if original.reversed_by is not None:
        error = InvalidInput(
            "regulation_id", f"regulation {regulation_id} was already undone by regulation {original.reversed_by}"
        )
        audit.refuse(uow, actor, UNDO_ACTION, None, error)
    progress(0.05, "selection")
    uow.conn.execute(_LOCK_DOSSIERS, {"original": regulation_id})
    uow.conn.execute(sa.text(_DROP_PLAN))
    uow.conn.execute(_UNDO_OUTCOME, {"original": regulation_id})
    adjustment = Adjustment(
        supplier_code=original.supplier_code,
        service_kinds=tuple(original.service_kinds),
        mode=original.mode,
        purchase_value=-original.purchase_value,
        sale_value=-original.sale_value,
        currency=original.currency,
        reason=text,
    )
    rid, changed = _write(
        uow,
        actor,
        scope=original.scope,
        adjustment=adjustment,
        reverses=regulation_id,
        dossier_count=original.dossier_count,
        line_count=original.line_count,
        insert_lines=_INSERT_UNDO_LINES,
        extra={"original": regulation_id},
        label=f"Undo of regulation {regulation_id}",
        progress=progress,
    )
    audit.record(
        uow.conn,
        actor.login,
        UNDO_ACTION,
        after={"regulation_id": rid, "reverses_regulation_id": regulation_id, "dossiers": changed, "reason": text},
    )
    idempotency.store(uow.conn, idempotency_key, {"regulation_id": rid})
    progress(0.95, "commit")
    uow.commit()
    progress(1.0, "done")
    return rid


def list_regulations(uow: UnitOfWork, actor: Actor, limit: int = 100) -> list[Regulation]:
    """The latest regulations, newest first, with the undo that reversed each (if any)."""
    if not actor.can("mass_regulation"):
        audit.require(uow.engine, actor, "regulation", ACTION)
    rows = uow.conn.execute(
        sa.text(
            """SELECT r.id, r.scope, r.supplier_code, r.service_kinds, r.mode, r.purchase_value, r.sale_value,
                      r.currency, r.reason, r.dossier_count, r.line_count, r.created_by, r.created_at,
                      r.reverses_regulation_id, u.id AS reversed_by
               FROM app.regulations r LEFT JOIN app.regulations u ON u.reverses_regulation_id = r.id
               ORDER BY r.id DESC LIMIT :limit"""
        ),
        {"limit": limit},
    )
    return [Regulation(**{**row._mapping, "service_kinds": tuple(row.service_kinds)}) for row in rows]
