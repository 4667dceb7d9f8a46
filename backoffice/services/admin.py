"""User administration: accounts, roles and the role → permission matrix, all behind `manage_users`.

Every function re-reads its caller from the database before checking the permission, so an
administrator disabled (or whose role lost `manage_users`) a second ago is refused even though
their session still holds the old `Actor`. Every write takes one transaction-level advisory lock:
administration is rare, and serialising it is what makes the guard rails hold under concurrency
("someone must still be able to manage users" is checked after the write, before the commit).

Passwords an administrator obtains (a new account's, a reset's) are generated here, returned
once and never stored in clear nor audited; replaying such a request is refused rather than
answered, because the first answer cannot be given again.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import sqlalchemy as sa

from backoffice.domain.errors import DomainError, InvalidInput, NotFound, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.services import audit, idempotency
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import (
    USER_COLUMNS,
    User,
    check_display_name,
    check_locale,
    check_login,
    check_role,
    current,
    hash_password,
)

PERMISSION = "manage_users"
ROLE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
MAX_ROLE_LABEL = 100
# No 0/O, 1/l/I: the password is read off a screen and typed or dictated.
_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PASSWORD_LENGTH = 16
# pg_advisory_xact_lock key shared by every administration write (an arbitrary constant).
_ADMIN_LOCK = 0x5553_4552


class AlreadyApplied(DomainError):
    """A replayed request whose answer was a one-time password: it cannot be shown again."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} was already done by this request; its one-time password was shown only then")


@dataclass(frozen=True)
class NewPassword:
    """A generated one-time password, for the administrator to hand over; the user must replace it."""

    user: User
    password: str


@dataclass(frozen=True)
class Role:
    role: str
    label: str
    version: int
    permissions: frozenset[str]
    users: int


@dataclass(frozen=True)
class Permission:
    permission: str
    description: str


def _refuse(uow: UnitOfWork, actor: Actor, action: str, error: DomainError) -> NoReturn:
    audit.record_apart(uow.engine, actor.login, action, outcome="refused", detail=str(error))
    raise error


def _require(uow: UnitOfWork, actor: Actor, action: str) -> None:
    """Check `manage_users` against the caller as stored now, not as their session remembers them."""
    audit.require(uow.engine, current(uow, actor), PERMISSION, action)


def _lock(uow: UnitOfWork) -> None:
    uow.conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADMIN_LOCK})


def _refuse_if_nobody_manages_users(uow: UnitOfWork, actor: Actor, action: str, field: str) -> None:
    """Called after a write, before its commit: the refusal rolls the write back."""
    left = uow.conn.execute(
        sa.text(
            """SELECT count(*) FROM app.users u
               JOIN app.role_permissions rp ON rp.role = u.role AND rp.permission = :p
               WHERE u.is_active"""
        ),
        {"p": PERMISSION},
    ).scalar_one()
    if left == 0:
        error = InvalidInput(field, f"this would leave no enabled user with the '{PERMISSION}' permission")
        _refuse(uow, actor, action, error)


def _one_time_password() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(PASSWORD_LENGTH))


def _account(uow: UnitOfWork, actor: Actor, action: str, login: str, expected_version: int) -> User:
    """The account, locked, or a refusal if it does not exist or changed since the form was drawn."""
    row = uow.conn.execute(
        sa.text(f"SELECT {USER_COLUMNS} FROM app.users WHERE login = :l FOR UPDATE"), {"l": login}
    ).first()
    if row is None:
        _refuse(uow, actor, action, NotFound(f"user {login} does not exist"))
    if row.version != expected_version:
        _refuse(uow, actor, action, StaleVersion(f"user {login}", expected_version, row.version))
    return User(**row._mapping)


def _audited(user: User) -> dict[str, Any]:
    # Never the password nor its hash.
    return {
        "login": user.login,
        "display_name": user.display_name,
        "role": user.role,
        "locale": user.locale,
        "is_active": user.is_active,
        "must_change_password": user.must_change_password,
        "version": user.version,
    }


def _update(uow: UnitOfWork, login: str, assignments: str, **params: Any) -> User:
    row = uow.conn.execute(
        sa.text(
            f"""UPDATE app.users SET {assignments}, version = version + 1
                WHERE login = :login RETURNING {USER_COLUMNS}"""
        ),
        {"login": login, **params},
    ).one()
    return User(**row._mapping)


def create_user(
    uow: UnitOfWork,
    actor: Actor,
    *,
    login: str,
    role: str,
    display_name: str | None = None,
    locale: str = "fr",
    idempotency_key: str,
) -> NewPassword:
    """A new account with a generated one-time password, which its holder must replace at first login."""
    action = "create_user"
    _require(uow, actor, action)
    try:
        request = {
            "login": check_login(login),
            "role": check_role(uow.conn, role),
            "display_name": check_display_name(display_name, login),
            "locale": check_locale(locale),
        }
    except InvalidInput as error:
        _refuse(uow, actor, action, error)
    if idempotency.claim(uow.conn, idempotency_key, action, request, actor.login) is not None:
        _refuse(uow, actor, action, AlreadyApplied(f"the creation of {login}"))
    if uow.conn.execute(sa.text("SELECT 1 FROM app.users WHERE login = :l"), {"l": login}).first():
        _refuse(uow, actor, action, InvalidInput("login", f"{login!r} already exists"))
    password = _one_time_password()
    row = uow.conn.execute(
        sa.text(
            f"""INSERT INTO app.users (login, display_name, password_hash, role, locale, must_change_password)
                VALUES (:login, :display_name, :hash, :role, :locale, true) RETURNING {USER_COLUMNS}"""
        ),
        {**request, "hash": hash_password(password)},
    ).one()
    user = User(**row._mapping)
    audit.record(uow.conn, actor.login, action, after=_audited(user))
    idempotency.store(uow.conn, idempotency_key, {"user_id": user.id})
    uow.commit()
    return NewPassword(user, password)


def update_user(
    uow: UnitOfWork,
    actor: Actor,
    *,
    login: str,
    role: str,
    display_name: str,
    expected_version: int,
    idempotency_key: str,
) -> User:
    """Change an account's role and display name; refused if the account changed since it was read."""
    action = "update_user"
    _require(uow, actor, action)
    try:
        request = {
            "login": login,
            "role": check_role(uow.conn, role),
            "display_name": check_display_name(display_name, login),
        }
    except InvalidInput as error:
        _refuse(uow, actor, action, error)
    _lock(uow)
    earlier = idempotency.claim(
        uow.conn, idempotency_key, action, {**request, "expected_version": expected_version}, actor.login
    )
    if earlier is not None:
        return _user(uow, int(earlier["user_id"]))
    before = _account(uow, actor, action, login, expected_version)
    after = _update(
        uow, login, "role = :role, display_name = :display_name", role=role, display_name=request["display_name"]
    )
    _refuse_if_nobody_manages_users(uow, actor, action, "role")
    audit.record(uow.conn, actor.login, action, before=_audited(before), after=_audited(after))
    idempotency.store(uow.conn, idempotency_key, {"user_id": after.id})
    uow.commit()
    return after


def set_user_active(
    uow: UnitOfWork, actor: Actor, *, login: str, active: bool, expected_version: int, idempotency_key: str
) -> User:
    """Enable or disable an account. A disabled account cannot log in, and its open sessions end at
    their next request; nobody can disable themself, nor the last enabled user manager."""
    action = "enable_user" if active else "disable_user"
    _require(uow, actor, action)
    if not isinstance(active, bool):
        _refuse(uow, actor, action, InvalidInput("active", f"{active!r} is not true or false"))
    if not active and login == actor.login:
        _refuse(uow, actor, action, InvalidInput("login", "you cannot disable your own account"))
    _lock(uow)
    request = {"login": login, "active": active, "expected_version": expected_version}
    earlier = idempotency.claim(uow.conn, idempotency_key, action, request, actor.login)
    if earlier is not None:
        return _user(uow, int(earlier["user_id"]))
    before = _account(uow, actor, action, login, expected_version)
    if before.is_active == active:
        state = "enabled" if active else "disabled"
        _refuse(uow, actor, action, InvalidInput("active", f"{login} is already {state}"))
    # No "last user manager" check is needed: the caller is an enabled user manager (checked
    # above against the database) and cannot disable themself, so one always remains.
    after = _update(uow, login, "is_active = :active", active=active)
    audit.record(uow.conn, actor.login, action, before=_audited(before), after=_audited(after))
    idempotency.store(uow.conn, idempotency_key, {"user_id": after.id})
    uow.commit()
    return after


def reset_password(
    uow: UnitOfWork, actor: Actor, *, login: str, expected_version: int, idempotency_key: str
) -> NewPassword:
    """Replace an account's password by a generated one-time password, shown once to the administrator.

    Its holder must choose a new one at the next login; a session they have open ends at its next request."""
    action = "reset_password"
    _require(uow, actor, action)
    _lock(uow)
    request = {"login": login, "expected_version": expected_version}
    if idempotency.claim(uow.conn, idempotency_key, action, request, actor.login) is not None:
        _refuse(uow, actor, action, AlreadyApplied(f"the password reset of {login}"))
    before = _account(uow, actor, action, login, expected_version)
    password = _one_time_password()
    after = _update(uow, login, "password_hash = :hash, must_change_password = true", hash=hash_password(password))
    audit.record(uow.conn, actor.login, action, before=_audited(before), after=_audited(after))
    idempotency.store(uow.conn, idempotency_key, {"user_id": after.id})
    uow.commit()
    return NewPassword(after, password)


def _user(uow: UnitOfWork, user_id: int) -> User:
    row = uow.conn.execute(sa.text(f"SELECT {USER_COLUMNS} FROM app.users WHERE id = :id"), {"id": user_id}).one()
    return User(**row._mapping)


_ROLES = sa.text(
    """SELECT r.role, r.label, r.version,
              coalesce(array_agg(DISTINCT rp.permission) FILTER (WHERE rp.permission IS NOT NULL), '{}')
                  AS permissions,
              (SELECT count(*) FROM app.users u WHERE u.role = r.role) AS users
       FROM app.roles r LEFT JOIN app.role_permissions rp ON rp.role = r.role
       GROUP BY r.role ORDER BY r.role"""
)


def _roles(uow: UnitOfWork) -> list[Role]:
    return [Role(r.role, r.label, r.version, frozenset(r.permissions), r.users) for r in uow.conn.execute(_ROLES)]


def list_roles(uow: UnitOfWork, actor: Actor) -> list[Role]:
    """Every role with its permissions, its version (for `set_role_permissions`) and how many accounts hold it."""
    _require(uow, actor, "list_roles")
    return _roles(uow)


def list_permissions(uow: UnitOfWork, actor: Actor) -> list[Permission]:
    _require(uow, actor, "list_permissions")
    rows = uow.conn.execute(sa.text("SELECT permission, description FROM app.permissions ORDER BY permission"))
    return [Permission(r.permission, r.description) for r in rows]


def create_role(uow: UnitOfWork, actor: Actor, *, role: str, label: str, idempotency_key: str) -> Role:
    """A new role, without any permission until they are granted in the matrix."""
    action = "create_role"
    _require(uow, actor, action)
    try:
        if not isinstance(role, str) or not ROLE_PATTERN.match(role):
            raise InvalidInput("role", "use 2-32 lowercase letters, digits or '_', starting with a letter")
        text = label.strip() if isinstance(label, str) else ""
        if not text:
            raise InvalidInput("label", "is required")
        if len(text) > MAX_ROLE_LABEL:
            raise InvalidInput("label", f"is longer than {MAX_ROLE_LABEL} characters")
    except InvalidInput as error:
        _refuse(uow, actor, action, error)
    _lock(uow)
    earlier = idempotency.claim(uow.conn, idempotency_key, action, {"role": role, "label": text}, actor.login)
    if earlier is None:
        if uow.conn.execute(sa.text("SELECT 1 FROM app.roles WHERE role = :r"), {"r": role}).first():
            _refuse(uow, actor, action, InvalidInput("role", f"{role!r} already exists"))
        uow.conn.execute(sa.text("INSERT INTO app.roles (role, label) VALUES (:r, :l)"), {"r": role, "l": text})
        audit.record(uow.conn, actor.login, action, after={"role": role, "label": text, "permissions": []})
        idempotency.store(uow.conn, idempotency_key, {"role": role})
        uow.commit()
    return next(r for r in _roles(uow) if r.role == role)


def set_role_permissions(
    uow: UnitOfWork,
    actor: Actor,
    *,
    desired: Mapping[str, Iterable[str]],
    expected_versions: Mapping[str, int],
    idempotency_key: str,
) -> list[Role]:
    """Make the matrix what `desired` says (role → the permissions it should have), in one transaction.

    Only the roles whose permissions change are written; each must still have the version the
    editor was drawn from (`expected_versions`, from `list_roles`). Roles absent from `desired`
    are left alone. Refused if no enabled user would keep `manage_users`."""
    action = "set_role_permissions"
    _require(uow, actor, action)
    roles = {r.role: r for r in _roles(uow)}
    known = {p for (p,) in uow.conn.execute(sa.text("SELECT permission FROM app.permissions"))}
    wanted: dict[str, frozenset[str]] = {}
    try:
        for role, permissions in desired.items():
            if role not in roles:
                raise InvalidInput("role", f"{role!r} is not one of {', '.join(sorted(roles))}")
            chosen = frozenset(permissions)
            unknown = sorted(chosen - known)
            if unknown:
                raise InvalidInput("permissions", f"{', '.join(map(repr, unknown))} is not a permission")
            wanted[role] = chosen
    except InvalidInput as error:
        _refuse(uow, actor, action, error)
    _lock(uow)
    request = {
        "desired": {role: sorted(p) for role, p in sorted(wanted.items())},
        "expected_versions": dict(sorted(expected_versions.items())),
    }
    if idempotency.claim(uow.conn, idempotency_key, action, request, actor.login) is not None:
        return _roles(uow)
    # Read again under the lock: the first read may predate another administrator's commit.
    roles = {r.role: r for r in _roles(uow)}
    changed = sorted(role for role, chosen in wanted.items() if chosen != roles[role].permissions)
    for role in changed:
        expected = expected_versions.get(role)
        if expected is None:
            _refuse(uow, actor, action, InvalidInput("expected_versions", f"missing for role {role}"))
        if expected != roles[role].version:
            _refuse(uow, actor, action, StaleVersion(f"role {role}", expected, roles[role].version))
    for role in changed:
        uow.conn.execute(
            sa.text("DELETE FROM app.role_permissions WHERE role = :r AND NOT (permission = ANY(:keep))"),
            {"r": role, "keep": sorted(wanted[role])},
        )
        uow.conn.execute(
            sa.text(
                """INSERT INTO app.role_permissions (role, permission)
                   SELECT :r, unnest(CAST(:add AS text[])) ON CONFLICT DO NOTHING"""
            ),
            {"r": role, "add": sorted(wanted[role])},
        )
        uow.conn.execute(sa.text("UPDATE app.roles SET version = version + 1 WHERE role = :r"), {"r": role})
    if changed:
        _refuse_if_nobody_manages_users(uow, actor, action, "permissions")
        audit.record(
            uow.conn,
            actor.login,
            action,
            before={role: sorted(roles[role].permissions) for role in changed},
            after={role: sorted(wanted[role]) for role in changed},
        )
    idempotency.store(uow.conn, idempotency_key, {"changed": changed})
    uow.commit()
    return _roles(uow)
