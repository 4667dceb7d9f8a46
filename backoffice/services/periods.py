"""Closed periods: an accountant closes a day, a month or a year; nothing is posted in it any more.

The database refuses every posting dated in a closed period (trigger app.refuse_closed_posting,
migration 0021: payments and refunds, client invoices and credit notes, supplier invoices,
write-offs), whoever writes it. Services that let a person choose a posting date check first with
`ensure_open`, so the refusal is audited and names the field. A correction of a closed period is
recorded in the next open one, as a new record that points at the one it corrects.

Only a period that is over can be closed (its last day is before today, in the accounting
timezone), and a closing is final: app.closed_periods is immutable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from backoffice.domain import periods
from backoffice.domain.clock import accounting_today
from backoffice.domain.errors import InvalidInput
from backoffice.domain.permissions import Actor
from backoffice.services import audit, idempotency
from backoffice.services.unit_of_work import UnitOfWork

ACTION = "close_period"
PERMISSION = "close_period"


@dataclass(frozen=True)
class ClosedPeriod:
    id: int
    granularity: str
    period_start: date
    period_end: date
    closed_by: str
    closed_at: datetime

    @property
    def label(self) -> str:
        return periods.label(self.granularity, self.period_start)


_COLUMNS = "id, granularity, period_start, period_end, closed_by, closed_at"


def close_period(
    uow: UnitOfWork,
    actor: Actor,
    *,
    granularity: str,
    period: str | date,
    idempotency_key: str,
    today: date | None = None,
) -> ClosedPeriod:
    """Close the day ('2026-03-31'), month ('2026-03') or year ('2026'); returns the closing."""
    audit.require(uow.engine, actor, PERMISSION, ACTION)
    today = today or accounting_today()
    try:
        kind, first, last = periods.span(granularity, period)
        if last >= today:
            raise InvalidInput("period", f"{periods.label(kind, first)} is not over yet: only a past period is closed")
    except InvalidInput as error:
        audit.refuse(uow, actor, ACTION, None, error)
    request = {"granularity": kind, "period_start": first.isoformat()}
    earlier = idempotency.claim(uow.conn, idempotency_key, ACTION, request, actor.login)
    if earlier is not None:
        return _load(uow.conn, int(earlier["id"]))
    row = uow.conn.execute(
        sa.text(
            f"""INSERT INTO app.closed_periods (granularity, period_start, period_end, closed_by)
                VALUES (:granularity, :first, :last, :actor) ON CONFLICT (granularity, period_start) DO NOTHING
                RETURNING {_COLUMNS}"""
        ),
        {"granularity": kind, "first": first, "last": last, "actor": actor.login},
    ).first()
    if row is None:
        error = InvalidInput("period", f"the {kind} {periods.label(kind, first)} is already closed")
        audit.refuse(uow, actor, ACTION, None, error)
    closed = ClosedPeriod(**row._mapping)
    audit.record(
        uow.conn,
        actor.login,
        ACTION,
        after={"id": closed.id, "granularity": kind, "period_start": first, "period_end": last},
    )
    idempotency.store(uow.conn, idempotency_key, {"id": closed.id})
    uow.commit()
    return closed


def _load(conn: Connection, closing_id: int) -> ClosedPeriod:
    row = conn.execute(sa.text(f"SELECT {_COLUMNS} FROM app.closed_periods WHERE id = :id"), {"id": closing_id}).one()
    return ClosedPeriod(**row._mapping)


def closed_period_of(conn: Connection, day: date) -> ClosedPeriod | None:
    """The closed period `day` falls in (the widest first), or None when the day is open."""
    row = conn.execute(
        sa.text(
            f"""SELECT {_COLUMNS} FROM app.closed_periods WHERE :day BETWEEN period_start AND period_end
                ORDER BY period_end - period_start DESC, period_start LIMIT 1"""
        ),
        {"day": day},
    ).first()
    return None if row is None else ClosedPeriod(**row._mapping)


def list_closed_periods(conn: Connection) -> list[ClosedPeriod]:
    rows = conn.execute(sa.text(f"SELECT {_COLUMNS} FROM app.closed_periods ORDER BY period_start, id")).all()
    return [ClosedPeriod(**row._mapping) for row in rows]


def next_open_day(conn: Connection, day: date) -> date:
    """The first day on or after `day` outside every closed period: where a correction is dated."""
    while (closed := closed_period_of(conn, day)) is not None:
        day = date.fromordinal(closed.period_end.toordinal() + 1)
    return day


def ensure_open(
    uow: UnitOfWork, actor: Actor, action: str, day: date, field: str, dossier_number: str | None = None
) -> None:
    """Refuse (audited, naming `field`) a posting dated `day` in a closed period."""
    closed = closed_period_of(uow.conn, day)
    if closed is not None:
        error = periods.refusal(field, day, closed.granularity, closed.period_start)
        audit.refuse(uow, actor, action, dossier_number, error)
