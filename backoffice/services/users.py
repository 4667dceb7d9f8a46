"""Accounts: create, list, authenticate, choose a language. Passwords are argon2id hashes, never stored in clear."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backoffice.domain.errors import AuthenticationFailed, InvalidInput
from backoffice.domain.permissions import ROLES, SYSTEM, Actor
from backoffice.services import audit
from backoffice.services.unit_of_work import UnitOfWork

_hasher = PasswordHasher()
LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 10
LOCALES = ("fr", "en")
# Verified when the login is unknown, so a wrong login costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class User:
    id: int
    login: str
    display_name: str
    role: str
    locale: str
    is_active: bool


def _validate(login: str, role: str, password: str, locale: str) -> None:
    if not LOGIN_PATTERN.match(login):
        raise InvalidInput("login", "use 2-64 lowercase letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise InvalidInput("role", f"{role!r} is not one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if locale not in LOCALES:
        raise InvalidInput("locale", "must be 'fr' or 'en'")


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
    _validate(login, role, password, locale)
    exists = uow.conn.execute(sa.text("SELECT 1 FROM app.users WHERE login = :l"), {"l": login}).first()
    if exists:
        raise InvalidInput("login", f"{login!r} already exists")
    row = uow.conn.execute(
        sa.text(
            """INSERT INTO app.users (login, display_name, password_hash, role, locale)
               VALUES (:login, :name, :hash, :role, :locale)
               RETURNING id, login, display_name, role, locale, is_active"""
        ),
        {"login": login, "name": display_name or login, "hash": _hasher.hash(password), "role": role, "locale": locale},
    ).one()
    user = User(**row._mapping)
    audit.record(uow.conn, actor.login if actor else SYSTEM, "add_user", after={"login": login, "role": role})
    uow.commit()
    return user


def list_users(uow: UnitOfWork) -> list[User]:
    rows = uow.conn.execute(
        sa.text("SELECT id, login, display_name, role, locale, is_active FROM app.users ORDER BY login")
    )
    return [User(**r._mapping) for r in rows]


def load_actor(uow: UnitOfWork, login: str) -> Actor:
    row = uow.conn.execute(
        sa.text(
            """SELECT u.login, u.role, u.locale, coalesce(array_agg(rp.permission)
                      FILTER (WHERE rp.permission IS NOT NULL), '{}') AS permissions
               FROM app.users u LEFT JOIN app.role_permissions rp ON rp.role = u.role
               WHERE u.login = :login AND u.is_active
               GROUP BY u.login, u.role, u.locale"""
        ),
        {"login": login},
    ).first()
    if row is None:
        raise AuthenticationFailed()
    return Actor(login=row.login, role=row.role, permissions=frozenset(row.permissions), locale=row.locale)


def authenticate(uow: UnitOfWork, login: str, password: str) -> Actor:
    """The actor for these credentials; every attempt, good or bad, is audited."""
    row = uow.conn.execute(
        sa.text("SELECT password_hash FROM app.users WHERE login = :login AND is_active"), {"login": login}
    ).first()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
        if row is None:
            raise VerificationError()
    except (VerificationError, InvalidHashError):
        audit.record_apart(uow.engine, login[:64] or "?", "login", outcome="refused", detail="wrong credentials")
        raise AuthenticationFailed() from None
    actor = load_actor(uow, login)
    audit.record(uow.conn, login, "login")
    uow.commit()
    return actor


def set_locale(uow: UnitOfWork, actor: Actor, locale: str) -> Actor:
    """Change the actor's own interface language ('fr' or 'en'); returns the actor as now stored."""
    if locale not in LOCALES:
        raise InvalidInput("locale", "must be 'fr' or 'en'")
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
