"""Accounts: create, list, authenticate, choose a language, change one's password.

Passwords are argon2id hashes, never stored in clear and never written to the audit log.
An account an administrator created or whose password was reset carries `must_change_password`:
its holder logs in only through `change_password`, and `load_actor` refuses it meanwhile, so a
session opened before the reset ends at its next request. What administrators do to accounts,
roles and permissions is in `backoffice.services.admin`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection

from backoffice.domain.errors import AuthenticationFailed, DomainError, InvalidInput
from backoffice.domain.permissions import SYSTEM, Actor
from backoffice.services import audit
from backoffice.services.unit_of_work import UnitOfWork

_hasher = PasswordHasher()
LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 10
MAX_DISPLAY_NAME = 100
LOCALES = ("fr", "en")
# Verified when the login is unknown, so a wrong login costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class PasswordChangeRequired(DomainError):
    """The password was right, but it is a one-time password: a new one must be chosen first."""

    def __init__(self, login: str) -> None:
        self.login = login
        super().__init__("your password was set by an administrator: choose a new one to log in")


@dataclass(frozen=True)
class User:
    id: int
    login: str
    display_name: str
    role: str
    locale: str
    is_active: bool
    version: int
    must_change_password: bool
    created_at: datetime


USER_COLUMNS = "id, login, display_name, role, locale, is_active, version, must_change_password, created_at"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_login(login: object) -> str:
    if not isinstance(login, str) or not LOGIN_PATTERN.match(login):
        raise InvalidInput("login", "use 2-64 lowercase letters, digits, '.', '_' or '-'")
    return login


def check_role(conn: Connection, role: object) -> str:
    # Roles live in the database: an admin may have created one since the code was written.
    roles = list(conn.execute(sa.text("SELECT role FROM app.roles ORDER BY role")).scalars())
    if role not in roles:
        raise InvalidInput("role", f"{role!r} is not one of {', '.join(roles)}")
    return str(role)


def check_locale(locale: object) -> str:
    if locale not in LOCALES:
        raise InvalidInput("locale", "must be 'fr' or 'en'")
    return str(locale)


def check_display_name(display_name: object, login: str) -> str:
    name = display_name.strip() if isinstance(display_name, str) else ""
    if len(name) > MAX_DISPLAY_NAME:
        raise InvalidInput("display_name", f"is longer than {MAX_DISPLAY_NAME} characters")
    return name or login


def _check_password(password: object, field: str = "password") -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(field, f"must be at least {MIN_PASSWORD_LENGTH} characters")
    return password


def add_user(
    uow: UnitOfWork,
    actor: Actor | None,
    login: str,
    role: str,
    password: str,
    display_name: str | None = None,
    locale: str = "fr",
) -> User:
    """Create an account. `actor` None means the operator at the command line (no app rights)."""
    if actor is not None:
        audit.require(uow.engine, actor, "manage_users", "add_user")
    check_login(login)
    check_role(uow.conn, role)
    _check_password(password)
    check_locale(locale)
    name = check_display_name(display_name, login)
    exists = uow.conn.execute(sa.text("SELECT 1 FROM app.users WHERE login = :l"), {"l": login}).first()
    if exists:
        raise InvalidInput("login", f"{login!r} already exists")
    row = uow.conn.execute(
        sa.text(
            f"""INSERT INTO app.users (login, display_name, password_hash, role, locale)
                VALUES (:login, :name, :hash, :role, :locale) RETURNING {USER_COLUMNS}"""
        ),
        {"login": login, "name": name, "hash": hash_password(password), "role": role, "locale": locale},
    ).one()
    user = User(**row._mapping)
    audit.record(uow.conn, actor.login if actor else SYSTEM, "add_user", after={"login": login, "role": role})
    uow.commit()
    return user


def list_users(uow: UnitOfWork, actor: Actor | None = None) -> list[User]:
    """Every account. `actor` None means the operator at the command line; in the app it needs `manage_users`."""
    if actor is not None:
        audit.require(uow.engine, current(uow, actor), "manage_users", "list_users")
    rows = uow.conn.execute(sa.text(f"SELECT {USER_COLUMNS} FROM app.users ORDER BY login"))
    return [User(**r._mapping) for r in rows]


def load_actor(uow: UnitOfWork, login: str) -> Actor:
    """The account as it is now: refused if disabled or waiting for a new password.

    The app calls it at every request (see apps/streamlit/ui/widgets.py `refresh_actor`), so a
    disabled account is signed out, and a role or permission change applies, at the next click."""
    row = uow.conn.execute(
        sa.text(
            """SELECT u.login, u.role, u.locale, coalesce(array_agg(rp.permission)
                      FILTER (WHERE rp.permission IS NOT NULL), '{}') AS permissions
               FROM app.users u LEFT JOIN app.role_permissions rp ON rp.role = u.role
               WHERE u.login = :login AND u.is_active AND NOT u.must_change_password
               GROUP BY u.login, u.role, u.locale"""
        ),
        {"login": login},
    ).first()
    if row is None:
        raise AuthenticationFailed()
    return Actor(login=row.login, role=row.role, permissions=frozenset(row.permissions), locale=row.locale)


def current(uow: UnitOfWork, actor: Actor) -> Actor:
    """`actor` as stored now: a session's Actor may predate a change of role, or the account's disabling
    (then it has no permission at all). The administration services check their caller through this."""
    try:
        return load_actor(uow, actor.login)
    except AuthenticationFailed:
        return Actor(actor.login, actor.role, locale=actor.locale)


def _verified(uow: UnitOfWork, login: str, password: str, action: str) -> sa.Row[Any]:
    """The account row (locked) if the password is right and the account enabled; refusals are audited."""
    row = uow.conn.execute(
        sa.text(
            """SELECT password_hash, is_active, must_change_password FROM app.users
               WHERE login = :login FOR UPDATE"""
        ),
        {"login": login},
    ).first()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
        if row is None:
            raise VerificationError()
    except (VerificationError, InvalidHashError):
        audit.record_apart(uow.engine, login[:64] or "?", action, outcome="refused", detail="wrong credentials")
        raise AuthenticationFailed() from None
    if not row.is_active:
        # Said only in the audit log: the person at the screen learns nothing about the account.
        audit.record_apart(uow.engine, login, action, outcome="refused", detail="account disabled")
        raise AuthenticationFailed()
    return row


def authenticate(uow: UnitOfWork, login: str, password: str) -> Actor:
    """The actor for these credentials; every attempt, good or bad, is audited.

    Raises PasswordChangeRequired when the password is a one-time one: the caller then asks for a
    new password and calls `change_password`."""
    row = _verified(uow, login, password, "login")
    if row.must_change_password:
        audit.record_apart(uow.engine, login, "login", outcome="refused", detail="password change required")
        raise PasswordChangeRequired(login)
    actor = load_actor(uow, login)
    audit.record(uow.conn, login, "login")
    uow.commit()
    return actor


def change_password(uow: UnitOfWork, login: str, current_password: str, new_password: str) -> Actor:
    """Replace one's password (the one-time one an administrator gave, or any); logs the person in."""
    row = _verified(uow, login, current_password, "change_password")
    try:
        _check_password(new_password, "new_password")
        if new_password == current_password:
            raise InvalidInput("new_password", "must differ from the current password")
    except InvalidInput as error:
        audit.record_apart(uow.engine, login, "change_password", outcome="refused", detail=str(error))
        raise
    version = uow.conn.execute(
        sa.text(
            """UPDATE app.users SET password_hash = :hash, must_change_password = false, version = version + 1
               WHERE login = :login RETURNING version"""
        ),
        {"hash": hash_password(new_password), "login": login},
    ).scalar_one()
    audit.record(
        uow.conn,
        login,
        "change_password",
        before={"must_change_password": row.must_change_password},
        after={"must_change_password": False, "version": version},
    )
    actor = load_actor(uow, login)
    audit.record(uow.conn, login, "login")
    uow.commit()
    return actor


def set_locale(uow: UnitOfWork, actor: Actor, locale: str) -> Actor:
    """Change the actor's own interface language ('fr' or 'en'); returns the actor as now stored."""
    check_locale(locale)
    row = uow.conn.execute(
        sa.text("SELECT locale FROM app.users WHERE login = :login AND is_active FOR UPDATE"), {"login": actor.login}
    ).first()
    if row is None:  # deactivated since logging in
        raise AuthenticationFailed()
    # The version moves so that an administrator's edit based on the old row is refused, not lost.
    uow.conn.execute(
        sa.text("UPDATE app.users SET locale = :locale, version = version + 1 WHERE login = :login"),
        {"locale": locale, "login": actor.login},
    )
    audit.record(uow.conn, actor.login, "set_locale", before={"locale": row.locale}, after={"locale": locale})
    refreshed = load_actor(uow, actor.login)
    uow.commit()
    return refreshed
