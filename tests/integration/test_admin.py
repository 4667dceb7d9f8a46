"""User administration at the service boundary: accounts, one-time passwords, enabling and
disabling, roles and the permission matrix, the guard rails, and what the audit log keeps.

Refusals by role for every service are in test_permission_matrix.py."""

from __future__ import annotations

import json
from collections.abc import Iterator

import factories as f
import pytest
import sqlalchemy as sa

from backoffice.domain.errors import AuthenticationFailed, InvalidInput, PermissionDenied, StaleVersion
from backoffice.domain.permissions import ROLES, Actor
from backoffice.services.admin import (
    AlreadyApplied,
    create_role,
    create_user,
    list_permissions,
    list_roles,
    reset_password,
    set_role_permissions,
    set_user_active,
    update_user,
)
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import (
    PasswordChangeRequired,
    authenticate,
    change_password,
    list_users,
    load_actor,
)


def actor(engine: sa.Engine, login: str) -> Actor:
    with UnitOfWork(engine) as uow:
        return load_actor(uow, login)


def events(engine: sa.Engine, action: str) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT actor, outcome, before, after, detail FROM audit.events WHERE action = :a ORDER BY id"),
            {"a": action},
        )
        return [tuple(r) for r in rows]


def account(engine: sa.Engine, login: str) -> sa.Row:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT role, display_name, is_active, must_change_password, version FROM app.users WHERE login=:l"
            ),
            {"l": login},
        ).one()


def whole_audit_log(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT before, after, detail FROM audit.events")).all()
    return json.dumps([tuple(r) for r in rows], default=str)


@pytest.fixture
def root(db: sa.Engine) -> Actor:
    """The only administrator, and an agent to administer."""
    f.user(db, "root", "admin")
    f.user(db, "alice", "agent")
    return actor(db, "root")


@pytest.fixture
def restore_reference(db: sa.Engine) -> Iterator[None]:
    """Roles and permissions are reference data kept between tests: put them back as migrated."""
    with db.connect() as conn:
        granted = conn.execute(sa.text("SELECT role, permission FROM app.role_permissions")).all()
    yield
    with db.begin() as conn:
        conn.execute(sa.text("TRUNCATE app.users CASCADE"))
        conn.execute(sa.text("DELETE FROM app.role_permissions"))
        conn.execute(sa.text("DELETE FROM app.roles WHERE NOT (role = ANY(:seeded))"), {"seeded": list(ROLES)})
        conn.execute(sa.text("UPDATE app.roles SET version = 1"))
        for role, permission in granted:
            conn.execute(sa.text("INSERT INTO app.role_permissions VALUES (:r, :p)"), {"r": role, "p": permission})


def test_a_new_account_gets_a_one_time_password_its_holder_must_replace(db: sa.Engine, root: Actor) -> None:
    with UnitOfWork(db) as uow:
        made = create_user(
            uow, root, login="carla", role="accountant", display_name="Carla", locale="en", idempotency_key="k1"
        )
    assert made.user.must_change_password and made.user.role == "accountant" and len(made.password) == 16
    with UnitOfWork(db) as uow, pytest.raises(PasswordChangeRequired):
        authenticate(uow, "carla", made.password)
    with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as same:
        change_password(uow, "carla", made.password, made.password)
    assert same.value.field == "new_password"
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationFailed):
        change_password(uow, "carla", "not the one-time password", "a brand new password")
    with UnitOfWork(db) as uow:
        carla = change_password(uow, "carla", made.password, "a brand new password")
    assert carla.role == "accountant" and carla.can("reconcile") and carla.locale == "en"
    with UnitOfWork(db) as uow:
        assert authenticate(uow, "carla", "a brand new password").login == "carla"
    assert account(db, "carla").must_change_password is False

    # The same request again cannot show the password again: refused, and audited.
    with UnitOfWork(db) as uow, pytest.raises(AlreadyApplied):
        create_user(
            uow, root, login="carla", role="accountant", display_name="Carla", locale="en", idempotency_key="k1"
        )
    created = events(db, "create_user")
    assert [e[:2] for e in created] == [("root", "done"), ("root", "refused")]
    assert created[0][3] == {
        "login": "carla",
        "display_name": "Carla",
        "role": "accountant",
        "locale": "en",
        "is_active": True,
        "must_change_password": True,
        "version": 1,
    }
    assert [e[:2] for e in events(db, "login")] == [("carla", "refused"), ("carla", "done"), ("carla", "done")]
    assert [e[1] for e in events(db, "change_password")] == ["refused", "refused", "done"]
    log = whole_audit_log(db)
    assert made.password not in log and "a brand new password" not in log and "$argon2" not in log


def test_bad_input_names_the_field_and_is_audited(db: sa.Engine, root: Actor) -> None:
    cases = [
        ({"login": "Bad Login", "role": "agent"}, "login"),
        ({"login": "dave", "role": "boss"}, "role"),
        ({"login": "dave", "role": "agent", "locale": "de"}, "locale"),
        ({"login": "alice", "role": "agent"}, "login"),
    ]
    for arguments, field in cases:
        with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as error:
            create_user(uow, root, idempotency_key=f"bad-{field}-{arguments['login']}", **arguments)
        assert error.value.field == field
    assert [e[1] for e in events(db, "create_user")] == ["refused"] * 4
    with UnitOfWork(db) as uow:
        assert [u.login for u in list_users(uow, root)] == ["alice", "root"]


def test_role_and_name_change_is_version_guarded_and_audited(db: sa.Engine, root: Actor) -> None:
    with UnitOfWork(db) as uow:
        changed = update_user(
            uow,
            root,
            login="alice",
            role="senior_agent",
            display_name="Alice M.",
            expected_version=1,
            idempotency_key="u1",
        )
    assert (changed.role, changed.display_name, changed.version) == ("senior_agent", "Alice M.", 2)
    assert actor(db, "alice").can("refund")
    with UnitOfWork(db) as uow:  # a replay returns the first result and changes nothing
        again = update_user(
            uow,
            root,
            login="alice",
            role="senior_agent",
            display_name="Alice M.",
            expected_version=1,
            idempotency_key="u1",
        )
    assert again.version == 2
    with UnitOfWork(db) as uow, pytest.raises(StaleVersion):
        update_user(uow, root, login="alice", role="agent", display_name="A", expected_version=1, idempotency_key="u2")
    assert tuple(account(db, "alice"))[:2] == ("senior_agent", "Alice M.")
    done, refused = events(db, "update_user")
    assert done[:2] == ("root", "done")
    assert (done[2]["role"], done[2]["display_name"], done[2]["version"]) == ("agent", "Alice", 1)
    assert (done[3]["role"], done[3]["display_name"], done[3]["version"]) == ("senior_agent", "Alice M.", 2)
    assert refused[1] == "refused" and "your version 1, now 2" in refused[4]


def test_a_disabled_user_cannot_log_in_and_is_refused_at_the_next_call(db: sa.Engine, root: Actor) -> None:
    f.user(db, "bob", "admin")
    with UnitOfWork(db) as uow:
        alice_session = authenticate(uow, "alice", f.PASSWORD)
        bob_session = authenticate(uow, "bob", f.PASSWORD)
    for login in ("alice", "bob"):
        with UnitOfWork(db) as uow:
            disabled = set_user_active(uow, root, login=login, active=False, expected_version=1, idempotency_key=login)
        assert not disabled.is_active and disabled.version == 2
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationFailed):
        authenticate(uow, "alice", f.PASSWORD)
    assert events(db, "login")[-1][1:] == ("refused", None, None, "account disabled")
    # What the app does before every request: the open session of a disabled account ends.
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationFailed):
        load_actor(uow, alice_session.login)
    # A service called with the session's stale Actor checks the account as stored.
    assert bob_session.can("manage_users")
    with UnitOfWork(db) as uow, pytest.raises(PermissionDenied):
        list_roles(uow, bob_session)
    assert events(db, "list_roles")[-1][:2] == ("bob", "refused")

    with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as twice:
        set_user_active(uow, root, login="alice", active=False, expected_version=2, idempotency_key="again")
    assert "already disabled" in str(twice.value)
    with UnitOfWork(db) as uow:
        set_user_active(uow, root, login="alice", active=True, expected_version=2, idempotency_key="back")
    with UnitOfWork(db) as uow:
        assert authenticate(uow, "alice", f.PASSWORD).login == "alice"
    disabling = events(db, "disable_user")
    assert disabling[0][2]["is_active"] is True and disabling[0][3]["is_active"] is False
    assert [e[1] for e in events(db, "enable_user")] == ["done"]


def test_an_admin_cannot_disable_themself_nor_remove_the_last_user_manager(
    db: sa.Engine, root: Actor, restore_reference: None
) -> None:
    with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as itself:
        set_user_active(uow, root, login="root", active=False, expected_version=1, idempotency_key="self")
    assert str(itself.value) == "login: you cannot disable your own account"
    with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as demoted:
        update_user(uow, root, login="root", role="agent", display_name="Root", expected_version=1, idempotency_key="d")
    assert str(demoted.value) == "role: this would leave no enabled user with the 'manage_users' permission"
    with UnitOfWork(db) as uow:
        admin_role = next(r for r in list_roles(uow, root) if r.role == "admin")
    with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as revoked:
        set_role_permissions(
            uow,
            root,
            desired={"admin": admin_role.permissions - {"manage_users"}},
            expected_versions={"admin": 1},
            idempotency_key="r",
        )
    assert revoked.value.field == "permissions"
    assert account(db, "root").role == "admin" and account(db, "root").is_active
    assert actor(db, "root").can("manage_users")
    refusals = [e[:2] for a in ("disable_user", "update_user", "set_role_permissions") for e in events(db, a)]
    assert refusals == [("root", "refused")] * 3

    # With another enabled user manager, the same demotion goes through.
    f.user(db, "bob", "admin")
    with UnitOfWork(db) as uow:
        update_user(
            uow, root, login="root", role="agent", display_name="Root", expected_version=1, idempotency_key="d2"
        )
    assert not actor(db, "root").can("manage_users")


def test_a_reset_password_is_shown_once_and_must_be_changed(db: sa.Engine, root: Actor) -> None:
    with UnitOfWork(db) as uow:
        session = authenticate(uow, "alice", f.PASSWORD)
    with UnitOfWork(db) as uow:
        reset = reset_password(uow, root, login="alice", expected_version=1, idempotency_key="r1")
    assert reset.user.must_change_password and reset.user.version == 2
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationFailed):
        authenticate(uow, "alice", f.PASSWORD)
    with UnitOfWork(db) as uow, pytest.raises(PasswordChangeRequired):
        authenticate(uow, "alice", reset.password)
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationFailed):  # her open session ends
        load_actor(uow, session.login)
    with UnitOfWork(db) as uow, pytest.raises(AlreadyApplied):
        reset_password(uow, root, login="alice", expected_version=1, idempotency_key="r1")
    with UnitOfWork(db) as uow, pytest.raises(StaleVersion):
        reset_password(uow, root, login="alice", expected_version=1, idempotency_key="r2")
    done, *refused = events(db, "reset_password")
    assert done[1:3] == ("done", {**done[2], "must_change_password": False, "version": 1})
    assert done[3]["must_change_password"] is True and done[3]["version"] == 2
    assert [e[1] for e in refused] == ["refused", "refused"]
    assert reset.password not in whole_audit_log(db)


def test_roles_are_created_and_the_matrix_applies_a_diff(db: sa.Engine, root: Actor, restore_reference: None) -> None:
    with UnitOfWork(db) as uow:
        lead = create_role(uow, root, role="team_lead", label="Team lead", idempotency_key="c1")
        permissions = {p.permission for p in list_permissions(uow, root)}
    assert (lead.role, lead.label, lead.version, lead.permissions, lead.users) == (
        "team_lead",
        "Team lead",
        1,
        frozenset(),
        0,
    )
    assert {"manage_users", "search_dossiers", "view_outbox"} <= permissions
    f.user(db, "tina", "team_lead")
    assert not actor(db, "tina").can("search_dossiers")

    with UnitOfWork(db) as uow:
        roles = set_role_permissions(
            uow,
            root,
            desired={"team_lead": {"search_dossiers", "manage_users"}, "agent": actor(db, "alice").permissions},
            expected_versions={"team_lead": 1},
            idempotency_key="m1",
        )
    by_role = {r.role: r for r in roles}
    assert by_role["team_lead"].permissions == {"search_dossiers", "manage_users"}
    assert by_role["team_lead"].version == 2 and by_role["agent"].version == 1, "only changed roles move"
    tina = actor(db, "tina")
    with UnitOfWork(db) as uow:
        assert "tina" in {u.login for u in list_users(uow, tina)}
    assert events(db, "set_role_permissions")[-1][2:4] == (
        {"team_lead": []},
        {"team_lead": ["manage_users", "search_dossiers"]},
    )

    with UnitOfWork(db) as uow, pytest.raises(StaleVersion):
        set_role_permissions(
            uow, root, desired={"team_lead": set()}, expected_versions={"team_lead": 1}, idempotency_key="m2"
        )
    for desired, field in (({"team_lead": {"fly"}}, "permissions"), ({"nobody": set()}, "role")):
        with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as error:
            set_role_permissions(uow, root, desired=desired, expected_versions={}, idempotency_key=f"bad-{field}")
        assert error.value.field == field
    with UnitOfWork(db) as uow:
        set_role_permissions(
            uow,
            root,
            desired={"team_lead": {"search_dossiers"}},
            expected_versions={"team_lead": 2},
            idempotency_key="m3",
        )
    with UnitOfWork(db) as uow, pytest.raises(PermissionDenied):
        list_users(uow, tina)
    with UnitOfWork(db) as uow, pytest.raises(InvalidInput) as taken:
        create_role(uow, root, role="team_lead", label="Again", idempotency_key="c2")
    assert taken.value.field == "role"
    assert [e[1] for e in events(db, "create_role")] == ["done", "refused"]
