"""The audit log: who did what, when (UTC), to which dossier, with the before and after.

Actions are recorded inside their own transaction (they exist only if the action committed);
refusals are recorded in a transaction of their own, because the refused action rolls back.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from backoffice.domain.errors import DomainError, PermissionDenied
from backoffice.domain.permissions import Actor

if TYPE_CHECKING:
    from backoffice.services.unit_of_work import UnitOfWork

_INSERT = sa.text(
    """INSERT INTO audit.events (actor, action, outcome, dossier_number, before, after, detail)
       VALUES (:actor, :action, :outcome, :dossier, CAST(:before AS jsonb), CAST(:after AS jsonb), :detail)"""
)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)


def record(
    conn: Connection,
    actor: str,
    action: str,
    *,
    outcome: str = "done",
    dossier_number: str | None = None,
    before: Any = None,
    after: Any = None,
    detail: str | None = None,
) -> None:
    conn.execute(
        _INSERT,
        {
            "actor": actor,
            "action": action,
            "outcome": outcome,
            "dossier": dossier_number,
            "before": _json(before),
            "after": _json(after),
            "detail": detail,
        },
    )


def record_apart(engine: Engine, actor: str, action: str, **kwargs: Any) -> None:
    """Record in a separate transaction: survives the rollback of the action it describes."""
    with engine.begin() as conn:
        record(conn, actor, action, **kwargs)


def require(engine: Engine, actor: Actor, permission: str, action: str, dossier_number: str | None = None) -> None:
    """Refuse (and audit the refusal) unless `actor` holds `permission`."""
    if actor.can(permission):
        return
    error = PermissionDenied(actor.login, permission)
    record_apart(engine, actor.login, action, outcome="refused", dossier_number=dossier_number, detail=str(error))
    raise error


def refuse(uow: UnitOfWork, actor: Actor, action: str, dossier_number: str | None, error: DomainError) -> NoReturn:
    """Audit the refusal apart (the action's own transaction rolls back), then raise it."""
    record_apart(uow.engine, actor.login, action, outcome="refused", dossier_number=dossier_number, detail=str(error))
    raise error
