"""Saved searches ("dossiers to process"): a user's named searches, optionally shared with a role.

The list a user sees is their own searches, those shared with their role, and the built-in
shortcuts of backoffice.queries.shortcuts. A search has a scope: `dossiers` (agents' searches,
`search_dossiers`) or one of the accountants' lists, `client_documents` and `supplier_invoices`
(backoffice.queries.accounting_search, `view_accounting`); each scope has its own criteria, sort
keys and names, and the built-in shortcuts are dossier searches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NoReturn

import sqlalchemy as sa

from backoffice.domain.errors import DomainError, InvalidInput, NotFound, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.queries import accounting_search
from backoffice.queries import criteria as criteria_json
from backoffice.queries.criteria import SearchCriteria
from backoffice.queries.search import SORT_KEYS
from backoffice.queries.shortcuts import SHORTCUTS
from backoffice.services import audit, idempotency
from backoffice.services.unit_of_work import UnitOfWork

MAX_NAME = 80
DOSSIERS = "dossiers"
SCOPES = (DOSSIERS, *accounting_search.SCOPES)
# What each scope's lists need; sharing one with a role needs `share_searches` as well.
_PERMISSION = {DOSSIERS: "search_dossiers", **{scope: "view_accounting" for scope in accounting_search.SCOPES}}


@dataclass(frozen=True)
class SavedSearch:
    """`id` None and `owner` None for a built-in shortcut (its `key` names it instead)."""

    id: int | None
    name: str
    criteria: SearchCriteria | accounting_search.DocumentCriteria
    sort: str
    descending: bool
    owner: str | None
    shared_with_role: str | None
    key: str | None = None
    version: int = 1
    scope: str = DOSSIERS

    @property
    def builtin(self) -> bool:
        return self.id is None


def _payload(criteria: Any, sort: str, descending: bool, scope: str = DOSSIERS) -> dict[str, Any]:
    as_json = criteria_json.to_dict(criteria) if scope == DOSSIERS else accounting_search.to_dict(criteria)
    return {"criteria": as_json, "sort": sort, "descending": descending}


def _from_row(row: Any) -> SavedSearch:
    stored = row.criteria
    read = criteria_json.from_dict if row.scope == DOSSIERS else accounting_search.from_dict
    return SavedSearch(
        id=row.id,
        name=row.name,
        criteria=read(stored["criteria"]),
        sort=stored["sort"],
        descending=stored["descending"],
        owner=row.owner,
        shared_with_role=row.shared_with_role,
        version=row.version,
        scope=row.scope,
    )


def _require(uow: UnitOfWork, actor: Actor, scope: str, action: str) -> None:
    """Refuse (audited) an unknown scope, or a caller without the scope's permission."""
    if scope not in SCOPES:
        _refuse(uow, actor, action, InvalidInput("scope", f"{scope!r} is not one of {', '.join(SCOPES)}"))
    audit.require(uow.engine, actor, _PERMISSION[scope], action)


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
    scope: str = DOSSIERS,
) -> SavedSearch:
    """Save the search under `name` (unique per user and scope); sharing with a role needs `share_searches`."""
    _require(uow, actor, scope, "save_search")
    if shared_with_role is not None:
        audit.require(uow.engine, actor, "share_searches", "save_search")
    try:
        name, payload = _checked(uow, name, criteria, sort, descending, shared_with_role, scope)
    except InvalidInput as error:
        _refuse(uow, actor, "save_search", error)
    arguments = {"name": name, "search": payload, "shared_with_role": shared_with_role}
    if scope != DOSSIERS:
        arguments["scope"] = scope
    earlier = idempotency.claim(uow.conn, idempotency_key, "save_search", arguments, actor.login)
    if earlier is not None:
        return _load(uow, earlier["id"])
    owner_id = _user_id(uow, actor)
    _refuse_taken_name(uow, actor, "save_search", owner_id, name, scope=scope)
    search_id = uow.conn.execute(
        sa.text(
            """INSERT INTO app.saved_searches (owner_id, name, criteria, shared_with_role, scope)
               VALUES (:o, :n, CAST(:c AS jsonb), :r, :s) RETURNING id"""
        ),
        {"o": owner_id, "n": name, "c": json.dumps(payload, sort_keys=True), "r": shared_with_role, "s": scope},
    ).scalar_one()
    audit.record(uow.conn, actor.login, "save_search", after={"id": search_id, **arguments})
    idempotency.store(uow.conn, idempotency_key, {"id": search_id})
    uow.commit()
    return _load(uow, search_id)


def _checked(
    uow: UnitOfWork,
    name: str,
    criteria: Any,
    sort: str,
    descending: bool,
    shared_with_role: str | None,
    scope: str = DOSSIERS,
) -> tuple[str, dict[str, Any]]:
    """The name and stored search in normal form, or InvalidInput naming the first bad field."""
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        raise InvalidInput("name", "is required")
    if len(name) > MAX_NAME:
        raise InvalidInput("name", f"is longer than {MAX_NAME} characters")
    if shared_with_role is not None:
        # Roles live in the database: an admin may have created one since the code was written.
        roles = list(uow.conn.execute(sa.text("SELECT role FROM app.roles ORDER BY role")).scalars())
        if shared_with_role not in roles:
            raise InvalidInput("shared_with_role", f"{shared_with_role!r} is not one of {', '.join(roles)}")
    if scope != DOSSIERS:
        if sort not in accounting_search.SORT_KEYS:
            raise InvalidInput("sort", f"{sort!r} is not one of {', '.join(accounting_search.SORT_KEYS)}")
        if not isinstance(criteria, accounting_search.DocumentCriteria):
            raise InvalidInput("criteria", f"a {scope} search takes document criteria")
        return name, _payload(accounting_search.validate(criteria), sort, bool(descending), scope)
    if sort not in SORT_KEYS:
        raise InvalidInput("sort", f"{sort!r} is not one of {', '.join(SORT_KEYS)}")
    return name, _payload(criteria_json.validate(criteria), sort, bool(descending))


def _refuse(uow: UnitOfWork, actor: Actor, action: str, error: DomainError) -> NoReturn:
    audit.record_apart(uow.engine, actor.login, action, outcome="refused", detail=str(error))
    raise error


def _refuse_taken_name(
    uow: UnitOfWork,
    actor: Actor,
    action: str,
    owner_id: int,
    name: str,
    other_than: int | None = None,
    scope: str = DOSSIERS,
) -> None:
    taken = uow.conn.execute(
        sa.text(
            """SELECT 1 FROM app.saved_searches
               WHERE owner_id = :o AND scope = :s AND name = :n AND id IS DISTINCT FROM :id"""
        ),
        {"o": owner_id, "s": scope, "n": name, "id": other_than},
    ).first()
    if taken:
        _refuse(uow, actor, action, InvalidInput("name", f"you already have a search named {name!r}"))


_SELECT = """SELECT s.id, s.name, s.criteria, s.shared_with_role, s.version, s.scope, u.login AS owner
             FROM app.saved_searches s JOIN app.users u ON u.id = s.owner_id"""


def _load(uow: UnitOfWork, search_id: int) -> SavedSearch:
    row = uow.conn.execute(sa.text(f"{_SELECT} WHERE s.id = :id"), {"id": search_id}).first()
    if row is None:
        raise NotFound(f"saved search {search_id} does not exist")
    return _from_row(row)


def list_searches(uow: UnitOfWork, actor: Actor, scope: str = DOSSIERS) -> list[SavedSearch]:
    """Own searches of `scope`, then those others shared with my role, then (dossiers) the built-in shortcuts."""
    _require(uow, actor, scope, "list_searches")
    rows = uow.conn.execute(
        sa.text(
            f"""{_SELECT}
                WHERE s.scope = :scope AND (u.login = :login OR s.shared_with_role = :role)
                ORDER BY (u.login = :login) DESC, lower(s.name), s.id"""
        ),
        {"login": actor.login, "role": actor.role, "scope": scope},
    )
    saved = [_from_row(r) for r in rows]
    if scope != DOSSIERS:
        return saved
    builtins = [SavedSearch(None, s.name, s.criteria, s.sort, s.descending, None, None, key=s.key) for s in SHORTCUTS]
    return saved + builtins


def delete_search(
    uow: UnitOfWork, actor: Actor, search_id: int, *, idempotency_key: str, scope: str = DOSSIERS
) -> None:
    """Delete one of my saved searches of `scope`; someone else's is refused (and the refusal audited)."""
    _require(uow, actor, scope, "delete_search")
    if idempotency.claim(uow.conn, idempotency_key, "delete_search", {"id": search_id}, actor.login) is not None:
        return
    found = uow.conn.execute(sa.text(f"{_SELECT} WHERE s.id = :id"), {"id": search_id}).first()
    if found is None or found.owner != actor.login or found.scope != scope:
        _refuse(uow, actor, "delete_search", NotFound(f"saved search {search_id} is not one of yours"))
    uow.conn.execute(sa.text("DELETE FROM app.saved_searches WHERE id = :id"), {"id": search_id})
    audit.record(
        uow.conn, actor.login, "delete_search", before={"id": search_id, "name": found.name, "search": found.criteria}
    )
    idempotency.store(uow.conn, idempotency_key, {"deleted": search_id})
    uow.commit()


def update_search(
    uow: UnitOfWork,
    actor: Actor,
    search_id: int,
    *,
    name: str,
    criteria: SearchCriteria,
    sort: str,
    descending: bool,
    shared_with_role: str | None,
    expected_version: int,
    idempotency_key: str,
    scope: str = DOSSIERS,
) -> SavedSearch:
    """Rename one of my saved searches, replace what it searches, or change whom it is shared with.

    The page passes the version it showed: an edit made from a stale page (the search changed in
    another tab since) is refused rather than silently overwriting the newer one.
    """
    action = "update_search"
    _require(uow, actor, scope, action)
    if shared_with_role is not None:
        audit.require(uow.engine, actor, "share_searches", action)
    try:
        name, payload = _checked(uow, name, criteria, sort, descending, shared_with_role, scope)
    except InvalidInput as error:
        _refuse(uow, actor, action, error)
    arguments = {"id": search_id, "name": name, "search": payload, "shared_with_role": shared_with_role}
    earlier = idempotency.claim(
        uow.conn, idempotency_key, action, {**arguments, "expected_version": expected_version}, actor.login
    )
    if earlier is not None:
        return _load(uow, earlier["id"])
    found = uow.conn.execute(sa.text(f"{_SELECT} WHERE s.id = :id FOR UPDATE OF s"), {"id": search_id}).first()
    if found is None or found.owner != actor.login or found.scope != scope:
        _refuse(uow, actor, action, NotFound(f"saved search {search_id} is not one of yours"))
    if found.version != expected_version:
        _refuse(uow, actor, action, StaleVersion(f"saved search {found.name!r}", expected_version, found.version))
    _refuse_taken_name(uow, actor, action, _user_id(uow, actor), name, other_than=search_id, scope=scope)
    uow.conn.execute(
        sa.text(
            """UPDATE app.saved_searches
               SET name = :n, criteria = CAST(:c AS jsonb), shared_with_role = :r, version = version + 1,
                   updated_at = now()
               WHERE id = :id"""
        ),
        {"id": search_id, "n": name, "c": json.dumps(payload, sort_keys=True), "r": shared_with_role},
    )
    audit.record(
        uow.conn,
        actor.login,
        action,
        before={
            "id": search_id,
            "name": found.name,
            "search": found.criteria,
            "shared_with_role": found.shared_with_role,
        },
        after=arguments,
    )
    idempotency.store(uow.conn, idempotency_key, {"id": search_id})
    uow.commit()
    return _load(uow, search_id)
