"""Login throttling and server-side sessions at the service boundary (backoffice.services.sessions)."""

from __future__ import annotations

import factories as f
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.config import get_settings
from backoffice.domain.errors import AuthenticationFailed
from backoffice.services import sessions
from backoffice.services.admin import set_user_active
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor

MAX = get_settings().login_max_failures


def log_in(engine: Engine, login: str, password: str = f.PASSWORD, client: str | None = None) -> sessions.Session:
    with UnitOfWork(engine) as uow:
        return sessions.log_in(uow, login, password, client=client)


def fail(engine: Engine, login: str, times: int, client: str | None = None) -> None:
    for _ in range(times):
        with pytest.raises(AuthenticationFailed):
            log_in(engine, login, "wrong password!", client)


def events(engine: Engine, action: str = "login") -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT actor, outcome, detail FROM audit.events WHERE action = :a ORDER BY id"), {"a": action}
        )
        return [tuple(r) for r in rows]


def age(engine: Engine, table: str, seconds: int, column: str) -> None:
    """Move past rows back in time (ended sessions refuse any change, so only open ones)."""
    only_open = " WHERE ended_at IS NULL" if table == "app.sessions" else ""
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE {table} SET {column} = {column} - make_interval(secs => :s){only_open}"), {"s": seconds}
        )


@pytest.fixture
def alice(db: Engine) -> Engine:
    f.user(db, "alice", "agent")
    f.user(db, "bob", "agent")
    return db


def test_after_max_failures_even_the_right_password_is_refused_then_the_cool_down_ends(alice: Engine) -> None:
    fail(alice, "alice", MAX)
    with pytest.raises(sessions.LoginThrottled) as throttled:
        log_in(alice, "alice")
    assert throttled.value.minutes == get_settings().login_cooldown_seconds // 60
    assert str(throttled.value).startswith("too many failed attempts: try again in")
    # Another login is not affected.
    assert log_in(alice, "bob").actor.login == "bob"
    audited = events(alice)
    assert audited.count(("alice", "refused", "wrong credentials")) == MAX
    assert audited[MAX][:2] == ("alice", "refused") and audited[MAX][2].startswith("throttled for ")
    assert ("bob", "done", None) in audited
    # Throttled attempts do not extend the lock: once the cool-down is over the right password works.
    age(alice, "app.login_attempts", get_settings().login_cooldown_seconds, "attempted_at")
    session = log_in(alice, "alice")
    assert session.actor.login == "alice" and len(session.token) >= 40
    with alice.connect() as conn:
        outcomes = conn.execute(
            sa.text("SELECT outcome, count(*) FROM app.login_attempts WHERE login = 'alice' GROUP BY 1")
        ).all()
    assert dict(outcomes) == {"failed": MAX, "throttled": 1, "succeeded": 1}


def test_a_success_clears_the_count(alice: Engine) -> None:
    fail(alice, "alice", MAX - 1)
    log_in(alice, "alice")
    fail(alice, "alice", MAX - 1)
    assert log_in(alice, "alice").actor.login == "alice"


def test_an_unknown_login_is_throttled_like_a_known_one(alice: Engine) -> None:
    fail(alice, "nobody", MAX)
    with pytest.raises(sessions.LoginThrottled):
        log_in(alice, "nobody")


def test_one_client_guessing_many_logins_is_throttled(alice: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKOFFICE_LOGIN_MAX_FAILURES_PER_CLIENT", "3")
    get_settings.cache_clear()
    try:
        for login in ("x1", "x2", "x3"):
            fail(alice, login, 1, client="203.0.113.7")
        with pytest.raises(sessions.LoginThrottled):
            log_in(alice, "alice", client="203.0.113.7")
        assert log_in(alice, "alice", client="198.51.100.1").actor.login == "alice"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert any(d and "client 203.0.113.7" in d for _, _, d in events(alice))


def test_the_one_time_password_form_is_throttled_too(alice: Engine) -> None:
    fail(alice, "alice", MAX)
    with UnitOfWork(alice) as uow, pytest.raises(sessions.LoginThrottled):
        sessions.change_password_and_log_in(uow, "alice", f.PASSWORD, "a brand new password")
    assert events(alice, "change_password")[0][2].startswith("throttled for ")


def test_sessions_end_on_logout_idleness_age_and_disabling(alice: Engine) -> None:
    settings = get_settings()
    first = log_in(alice, "alice")
    with UnitOfWork(alice) as uow:
        assert sessions.resume(uow, first.token).login == "alice"
        sessions.log_out(uow, first.token)
    with UnitOfWork(alice) as uow, pytest.raises(sessions.SessionEnded) as ended:
        sessions.resume(uow, first.token)
    assert ended.value.reason == sessions.LOGGED_OUT

    idle = log_in(alice, "alice")
    age(alice, "app.sessions", settings.session_idle_minutes * 60 - 5, "last_seen_at")
    with UnitOfWork(alice) as uow:
        sessions.resume(uow, idle.token)  # a click just in time moves the idle clock
    age(alice, "app.sessions", settings.session_idle_minutes * 60 - 5, "last_seen_at")
    with UnitOfWork(alice) as uow:
        sessions.resume(uow, idle.token)
    age(alice, "app.sessions", settings.session_idle_minutes * 60, "last_seen_at")
    with UnitOfWork(alice) as uow, pytest.raises(sessions.SessionEnded) as ended:
        sessions.resume(uow, idle.token)
    assert ended.value.reason == sessions.IDLE

    old = log_in(alice, "alice")
    age(alice, "app.sessions", settings.session_absolute_hours * 3600, "created_at")
    with UnitOfWork(alice) as uow, pytest.raises(sessions.SessionEnded) as ended:
        sessions.resume(uow, old.token)
    assert ended.value.reason == sessions.EXPIRED

    f.user(alice, "root", "admin")
    open_ = log_in(alice, "alice")
    with UnitOfWork(alice) as uow:
        set_user_active(
            uow, load_actor(uow, "root"), login="alice", active=False, expected_version=1, idempotency_key="k"
        )
    with UnitOfWork(alice) as uow, pytest.raises(sessions.SessionEnded) as ended:
        sessions.resume(uow, open_.token)
    assert ended.value.reason == sessions.ACCOUNT_CLOSED

    with alice.connect() as conn:
        ends = conn.execute(sa.text("SELECT end_reason FROM app.sessions ORDER BY id")).scalars().all()
        # An ended session cannot be reopened, not even by a direct UPDATE.
        with pytest.raises(sa.exc.IntegrityError, match="has ended"):
            conn.execute(sa.text("UPDATE app.sessions SET ended_at = NULL, end_reason = NULL"))
    assert ends == ["logged_out", "idle", "expired", "account_closed"]
    assert [d for _, _, d in events(alice, "end_session")] == ["idle", "expired", "account_closed"]
    assert events(alice, "logout") == [("alice", "done", "logged_out")]


def test_an_unknown_or_missing_token_opens_nothing(alice: Engine) -> None:
    for token in (None, "", "forged-token"):
        with UnitOfWork(alice) as uow, pytest.raises(sessions.SessionEnded):
            sessions.resume(uow, token)
    session = log_in(alice, "alice")
    with alice.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_sha256 FROM app.sessions")).scalars().all()
    assert session.token not in stored and len(stored[0]) == 64
