"""Accounts at the service boundary: creation, validation, login."""

import pytest
import sqlalchemy as sa

from backoffice.domain.errors import AuthenticationFailed, InvalidInput, PermissionDenied
from backoffice.domain.permissions import Actor
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import add_user, authenticate, list_users, set_locale


def test_login_accepts_the_right_password_and_refuses_a_wrong_one(db: sa.Engine) -> None:
    with UnitOfWork(db) as uow:
        add_user(uow, None, "alice", "agent", "correct horse battery")
    with UnitOfWork(db) as uow:
        actor = authenticate(uow, "alice", "correct horse battery")
    assert actor.role == "agent" and actor.can("search_dossiers") and not actor.can("refund")
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationFailed):
        authenticate(uow, "alice", "wrong password!")
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationFailed):
        authenticate(uow, "nobody", "correct horse battery")
    with db.connect() as conn:
        outcomes = conn.execute(
            sa.text("SELECT actor, outcome FROM audit.events WHERE action='login' ORDER BY id")
        ).all()
    assert [tuple(r) for r in outcomes] == [("alice", "done"), ("alice", "refused"), ("nobody", "refused")]


def test_password_is_stored_hashed(db: sa.Engine) -> None:
    with UnitOfWork(db) as uow:
        add_user(uow, None, "bob", "accountant", "correct horse battery")
    with db.connect() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM app.users")).scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored


@pytest.mark.parametrize(
    ("login", "role", "password", "field"),
    [
        ("Bad Login", "agent", "long enough pw", "login"),
        ("carol", "boss", "long enough pw", "role"),
        ("carol", "agent", "short", "password"),
    ],
)
def test_bad_input_names_the_field(db: sa.Engine, login: str, role: str, password: str, field: str) -> None:
    with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as error:
        add_user(uow, None, login, role, password)
    assert error.value.field == field
    with UnitOfWork(db) as uow:
        assert list_users(uow) == []


def test_only_user_managers_create_accounts_and_refusals_are_audited(db: sa.Engine) -> None:
    agent = Actor("alice", "agent", frozenset({"search_dossiers"}))
    with UnitOfWork(db) as uow, pytest.raises(PermissionDenied):
        add_user(uow, agent, "mallory", "admin", "long enough pw")
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.users")).scalar_one() == 0
        refused = conn.execute(sa.text("SELECT actor, action FROM audit.events WHERE outcome='refused'")).all()
    assert [tuple(r) for r in refused] == [("alice", "add_user")]


def test_a_user_chooses_their_language_and_the_change_is_audited(db: sa.Engine) -> None:
    with UnitOfWork(db) as uow:
        add_user(uow, None, "alice", "agent", "correct horse battery", locale="fr")
    with UnitOfWork(db) as uow:
        actor = authenticate(uow, "alice", "correct horse battery")
    with UnitOfWork(db) as uow:
        refreshed = set_locale(uow, actor, "en")
    assert refreshed.locale == "en" and refreshed.login == "alice" and refreshed.permissions == actor.permissions
    with UnitOfWork(db) as uow:
        assert authenticate(uow, "alice", "correct horse battery").locale == "en"
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT version FROM app.users WHERE login = 'alice'")).scalar_one() == 2
        event = conn.execute(
            sa.text("SELECT actor, outcome, before, after FROM audit.events WHERE action = 'set_locale'")
        ).one()
    assert tuple(event) == ("alice", "done", {"locale": "fr"}, {"locale": "en"})


def test_an_unknown_language_is_refused_naming_the_field(db: sa.Engine) -> None:
    with UnitOfWork(db) as uow:
        add_user(uow, None, "alice", "agent", "correct horse battery", locale="fr")
        actor = authenticate(uow, "alice", "correct horse battery")
    with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as error:
        set_locale(uow, actor, "de")
    assert error.value.field == "locale"
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT locale, version FROM app.users")).one() == ("fr", 1)
        assert conn.execute(sa.text("SELECT count(*) FROM audit.events WHERE action = 'set_locale'")).scalar() == 0
