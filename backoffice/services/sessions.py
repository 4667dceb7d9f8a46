"""Logging in with throttling, and the server-side sessions that follow.

`log_in` (and `change_password_and_log_in`, which also checks a password) refuses, without looking
at the password, a login that failed `login_max_failures` times within `login_failure_window_seconds`
and whose last failure is less than `login_cooldown_seconds` old; the same for a client (the address
the app sees) over every login it tried, with `login_max_failures_per_client`. A successful login
clears its login's count; a throttled attempt does not count as a failure, so the cool-down ends
on time. Attempts of one login are serialised (an advisory lock), so parallel guesses cannot slip
past the count. Every attempt is in app.login_attempts and in the audit log (successes and wrong
passwords by `backoffice.services.users`, throttled ones here).

A successful login opens a session: a random token kept by the app, its SHA-256 in app.sessions.
`resume`, called at every click, ends it when it was idle longer than `session_idle_minutes`, when
it is older than `session_absolute_hours`, or when the account was disabled or its password reset;
`log_out` ends it. Each end is audited once.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from backoffice.config import get_settings
from backoffice.domain.errors import AuthenticationFailed, DomainError
from backoffice.domain.permissions import Actor
from backoffice.services import audit, users
from backoffice.services.unit_of_work import UnitOfWork

# Why a session ended (app.sessions.end_reason).
LOGGED_OUT = "logged_out"
IDLE = "idle"
EXPIRED = "expired"
ACCOUNT_CLOSED = "account_closed"
MAX_CLIENT = 100


class LoginThrottled(DomainError):
    """Too many recent failures for this login or this client: no password is checked until `retry_after`."""

    def __init__(self, retry_after_seconds: int) -> None:
        self.retry_after_seconds = retry_after_seconds
        self.minutes = max(1, math.ceil(retry_after_seconds / 60))
        super().__init__(f"too many failed attempts: try again in {self.minutes} minute(s)")


class SessionEnded(DomainError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"your session has ended ({reason}): log in again")


@dataclass(frozen=True)
class Session:
    token: str
    actor: Actor


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# The cool-down still to wait, in seconds, or nothing: the last failure opened a lock if at least
# `max` failures fall within the window ending at it. `since` drops failures before a success.
_LOCKED_FOR = """
WITH failures AS (
    SELECT attempted_at FROM app.login_attempts
    WHERE {column} = :who AND outcome = 'failed' AND attempted_at > :since
      AND attempted_at > clock_timestamp() - make_interval(secs => :window + :cooldown)
), latest AS (SELECT max(attempted_at) AS at FROM failures)
SELECT ceil(extract(epoch FROM latest.at + make_interval(secs => :cooldown) - clock_timestamp()))
FROM latest
WHERE latest.at + make_interval(secs => :cooldown) > clock_timestamp()
  AND (SELECT count(*) FROM failures WHERE attempted_at > latest.at - make_interval(secs => :window)) >= :max
"""


def _locked_for(conn: Connection, login: str, client: str | None) -> int | None:
    settings = get_settings()
    timing = {"window": settings.login_failure_window_seconds, "cooldown": settings.login_cooldown_seconds}
    last_success = conn.execute(
        sa.text("SELECT max(attempted_at) FROM app.login_attempts WHERE login = :l AND outcome = 'succeeded'"),
        {"l": login},
    ).scalar_one()
    waits = [
        conn.execute(
            sa.text(_LOCKED_FOR.format(column="login")),
            {"who": login, "since": last_success or "-infinity", "max": settings.login_max_failures, **timing},
        ).scalar_one_or_none()
    ]
    if client:
        waits.append(
            conn.execute(
                sa.text(_LOCKED_FOR.format(column="client")),
                {"who": client, "since": "-infinity", "max": settings.login_max_failures_per_client, **timing},
            ).scalar_one_or_none()
        )
    found = [int(w) for w in waits if w is not None]
    return max(found) if found else None


def _note(conn: Connection, login: str, client: str | None, outcome: str) -> None:
    conn.execute(
        sa.text("INSERT INTO app.login_attempts (login, client, outcome) VALUES (:l, :c, :o)"),
        {"l": login, "c": client, "o": outcome},
    )


def _note_apart(engine: Engine, login: str, client: str | None, outcome: str) -> None:
    with engine.begin() as conn:
        _note(conn, login, client, outcome)


def _no_such_login() -> Actor:
    raise AuthenticationFailed()


def _guarded(uow: UnitOfWork, login: str, client: str | None, action: str, attempt: Callable[[], Actor]) -> Session:
    if not users.LOGIN_PATTERN.match(login):
        # No account has such a login: refused as a wrong password, without a look-up (the text
        # may hold a NUL, which PostgreSQL refuses in a parameter).
        attempt = _no_such_login
    # The audit log keeps at most 64 characters of what was typed as a login; so does the count.
    login = login.replace("\x00", "\ufffd")[:64]
    client = client.replace("\x00", "\ufffd")[:MAX_CLIENT] if client else None
    uow.conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"login:{login}"})
    wait = _locked_for(uow.conn, login, client)
    if wait is not None:
        _note_apart(uow.engine, login, client, "throttled")
        error = LoginThrottled(wait)
        detail = f"throttled for {wait} s" + (f" (client {client})" if client else "")
        audit.record_apart(uow.engine, login or "?", action, outcome="refused", detail=detail)
        raise error
    try:
        actor = attempt()
    except AuthenticationFailed:
        if attempt is _no_such_login:
            audit.record_apart(uow.engine, login or "?", action, outcome="refused", detail="wrong credentials")
        _note_apart(uow.engine, login, client, "failed")
        raise
    except users.PasswordChangeRequired:
        # The password was right: it clears the count, but opens no session.
        _note_apart(uow.engine, login, client, "succeeded")
        raise
    _note(uow.conn, login, client, "succeeded")
    token = secrets.token_urlsafe(32)
    uow.conn.execute(
        sa.text("INSERT INTO app.sessions (token_sha256, login, client) VALUES (:t, :l, :c)"),
        {"t": _digest(token), "l": actor.login, "c": client},
    )
    uow.commit()
    return Session(token, actor)


def log_in(uow: UnitOfWork, login: str, password: str, *, client: str | None = None) -> Session:
    """A new session for these credentials, unless the login or the client is throttled.

    Raises LoginThrottled, AuthenticationFailed or users.PasswordChangeRequired."""
    return _guarded(uow, login, client, "login", lambda: users.authenticate(uow, login, password))


def change_password_and_log_in(
    uow: UnitOfWork, login: str, current_password: str, new_password: str, *, client: str | None = None
) -> Session:
    """`users.change_password` under the same throttling (it checks a password too), then a session."""
    return _guarded(
        uow,
        login,
        client,
        "change_password",
        lambda: users.change_password(uow, login, current_password, new_password),
    )


def _end(uow: UnitOfWork, session_id: int, login: str, reason: str) -> None:
    uow.conn.execute(
        sa.text("UPDATE app.sessions SET ended_at = clock_timestamp(), end_reason = :r WHERE id = :id"),
        {"r": reason, "id": session_id},
    )
    audit.record(uow.conn, login, "logout" if reason == LOGGED_OUT else "end_session", detail=reason)
    uow.commit()


def resume(uow: UnitOfWork, token: str | None) -> Actor:
    """The account behind an open session, as stored now; the session's last click moves to now.

    Raises SessionEnded (with its `reason`) when the session is unknown, ended, idle too long,
    too old, or its account can no longer log in: the session is then ended for good."""
    settings = get_settings()
    row = None
    if token:
        row = uow.conn.execute(
            sa.text(
                """SELECT id, login, end_reason,
                          clock_timestamp() - last_seen_at >= make_interval(mins => :idle) AS idle,
                          clock_timestamp() - created_at >= make_interval(hours => :absolute) AS expired
                   FROM app.sessions WHERE token_sha256 = :t FOR UPDATE"""
            ),
            {"t": _digest(token), "idle": settings.session_idle_minutes, "absolute": settings.session_absolute_hours},
        ).first()
    if row is None:
        raise SessionEnded(LOGGED_OUT)
    if row.end_reason is not None:
        raise SessionEnded(row.end_reason)
    reason = EXPIRED if row.expired else IDLE if row.idle else None
    if reason is None:
        try:
            actor = users.load_actor(uow, row.login)
        except AuthenticationFailed:
            reason = ACCOUNT_CLOSED
    if reason is not None:
        _end(uow, row.id, row.login, reason)
        raise SessionEnded(reason)
    uow.conn.execute(sa.text("UPDATE app.sessions SET last_seen_at = clock_timestamp() WHERE id = :id"), {"id": row.id})
    uow.commit()
    return actor


def log_out(uow: UnitOfWork, token: str | None) -> None:
    """End the session (audited as `logout`); a session already ended or unknown is left as it is."""
    if not token:
        return
    row = uow.conn.execute(
        sa.text("SELECT id, login FROM app.sessions WHERE token_sha256 = :t AND ended_at IS NULL FOR UPDATE"),
        {"t": _digest(token)},
    ).first()
    if row is not None:
        _end(uow, row.id, row.login, LOGGED_OUT)
