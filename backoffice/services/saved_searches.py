"""Saved searches ("dossiers to process"): a user's named searches, optionally shared with a role.

The list a user sees is their own searches, those shared with their role, and the built-in
shortcuts of backoffice.queries.shortcuts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from backoffice.domain.errors import InvalidInput, NotFound
from backoffice.domain.permissions import ROLES, Actor
from backoffice.queries import criteria as criteria_json
from backoffice.queries.criteria import SearchCriteria
from backoffice.queries.search import SORT_KEYS
from backoffice.queries.shortcuts import SHORTCUTS
from backoffice.services import audit, idempotency
from backoffice.services.unit_of_work import UnitOfWork

MAX_NAME = 80


@dataclass(frozen=True)
class SavedSearch:
    """`id` None and `owner` None for a built-in shortcut (its `key` names it instead)."""

    id: int | None
    name: str
    criteria: SearchCriteria
    sort: str
    descending: bool
    owner: str | None
    shared_with_role: str | None
    key: str | None = None

    @property
    def builtin(self) -> bool:
        return self.id is None


def _payload(criteria: SearchCriteria, sort: str, descending: bool) -> dict[str, Any]:
    return {"criteria": criteria_json.to_dict(criteria), "sort": sort, "descending": descending}


def _from_row(row: Any) -> SavedSearch:
    stored = row.criteria
    return SavedSearch(
        id=row.id,
        name=row.name,
        criteria=criteria_json.from_dict(stored["criteria"]),
        sort=stored["sort"],
        descending=stored["descending"],
        owner=row.owner,
        shared_with_role=row.shared_with_role,
    )


def _user_id(uow: UnitOfWork, actor: Actor) -> int:
    user_id = uow.conn.execute(sa.text("SELECT id FROM app.users WHERE login = :l"), {"l": actor.login}).scalar()
    if user_id is None:
        raise NotFound(f"user {actor.login} does not exist")
    return user_id


def save_search(
    uow: UnitOfWork,
    actor: Actor,
    name: str,
    criteria: SearchCriteria,
    *,
    sort: str = "departure_date",
    descending: bool = False,
    shared_with_role: str | None = None,
    idempotency_key: str,
) -> SavedSearch:
    """Save the search under `name` (unique per user); sharing with a role needs `share_searches`."""
    audit.require(uow.engine, actor, "search_dossiers", "save_search")
    if shared_with_role is not None:
        audit.require(uow.engine, actor, "share_searches", "save_search")
    name = (name or "").strip()
    if not name:
        raise InvalidInput("name", "is required")
    if len(name) > MAX_NAME:
        raise InvalidInput("name", f"is longer than {MAX_NAME} characters")
    if shared_with_role is not None and shared_with_role not in ROLES:
        raise InvalidInput("shared_with_role", f"{shared_with_role!r} is not one of {', '.join(ROLES)}")
    if sort not in SORT_KEYS:
        raise InvalidInput("sort", f"{sort!r} is not one of {', '.join(SORT_KEYS)}")
    criteria = criteria_json.validate(criteria)
    payload = _payload(criteria, sort, descending)
    arguments = {"name": name, "search": payload, "shared_with_role": shared_with_role}
    earlier = idempotency.claim(uow.conn, idempotency_key, "save_search", arguments, actor.login)
    if earlier is not None:
        return _load(uow, earlier["id"])
    owner_id = _user_id(uow, actor)
    taken = uow.conn.execute(
        sa.text("SELECT 1 FROM app.saved_searches WHERE owner_id = :o AND name = :n"), {"o": owner_id, "n": name}
    ).first()
    if taken:
        raise InvalidInput("name", f"you already have a search named {name!r}")
    search_id = uow.conn.execute(
        sa.text(
            """INSERT INTO app.saved_searches (owner_id, name, criteria, shared_with_role)
               VALUES (:o, :n, CAST(:c AS jsonb), :r) RETURNING id"""
        ),
        {"o": owner_id, "n": name, "c": json.dumps(payload, sort_keys=True), "r": shared_with_role},
    ).scalar_one()
    audit.record(uow.conn, actor.login, "save_search", after={"id": search_id, **arguments})
    idempotency.store(uow.conn, idempotency_key, {"id": search_id})
    uow.commit()
    return _load(uow, search_id)


_SELECT = """SELECT s.id, s.name, s.criteria, s.shared_with_role, u.login AS owner
             FROM app.saved_searches s JOIN app.users u ON u.id = s.owner_id"""


def _load(uow: UnitOfWork, search_id: int) -> SavedSearch:
    row = uow.conn.execute(sa.text(f"{_SELECT} WHERE s.id = :id"), {"id": search_id}).first()
    if row is None:
        raise NotFound(f"saved search {search_id} does not exist")
    return _from_row(row)


def list_searches(uow: UnitOfWork, actor: Actor) -> list[SavedSearch]:
    """Own searches, then those others shared with my role, then the built-in shortcuts."""
    audit.require(uow.engine, actor, "search_dossiers", "list_searches")
    rows = uow.conn.execute(
        sa.text(
            f"""{_SELECT}
                WHERE u.login = :login OR s.shared_with_role = :role
                ORDER BY (u.login = :login) DESC, lower(s.name), s.id"""
        ),
        {"login": actor.login, "role": actor.role},
    )
    saved = [_from_row(r) for r in rows]
    builtins = [SavedSearch(None, s.name, s.criteria, s.sort, s.descending, None, None, key=s.key) for s in SHORTCUTS]
    return saved + builtins


def delete_search(uow: UnitOfWork, actor: Actor, search_id: int, *, idempotency_key: str) -> None:
    """Delete one of my saved searches; someone else's is refused (and the refusal audited)."""
    audit.require(uow.engine, actor, "search_dossiers", "delete_search")
    if idempotency.claim(uow.conn, idempotency_key, "delete_search", {"id": search_id}, actor.login) is not None:
        return
    found = uow.conn.execute(sa.text(f"{_SELECT} WHERE s.id = :id"), {"id": search_id}).first()
    if found is None or found.owner != actor.login:
        detail = f"saved search {search_id} is not one of yours"
        audit.record_apart(uow.engine, actor.login, "delete_search", outcome="refused", detail=detail)
        raise NotFound(detail)
    uow.conn.execute(sa.text("DELETE FROM app.saved_searches WHERE id = :id"), {"id": search_id})
    audit.record(
        uow.conn, actor.login, "delete_search", before={"id": search_id, "name": found.name, "search": found.criteria}
    )
    idempotency.store(uow.conn, idempotency_key, {"deleted": search_id})
    uow.commit()
