"""The Admin page through AppTest, logged in through the real login page: each form, the one-time
password shown once, a refusal as the service words it, the page hidden without `manage_users`;
and on the login page, the new-password form and the end of a disabled account's session."""

from __future__ import annotations

from collections.abc import Iterator

import factories as f
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest
from test_app import log_in

from backoffice.domain.permissions import ROLES
from backoffice.services.admin import create_user, set_user_active
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import PasswordChangeRequired, authenticate, load_actor

ADMIN_PAGE = "app_pages/admin.py"


@pytest.fixture
def accounts(db: sa.Engine) -> Iterator[sa.Engine]:
    """An administrator and an agent, both French; the permission matrix restored afterwards."""
    with db.connect() as conn:
        granted = conn.execute(sa.text("SELECT role, permission FROM app.role_permissions")).all()
    f.user(db, "root", "admin")
    f.user(db, "alice", "agent")
    yield db
    with db.begin() as conn:
        conn.execute(sa.text("TRUNCATE app.users CASCADE"))
        conn.execute(sa.text("DELETE FROM app.role_permissions"))
        conn.execute(sa.text("DELETE FROM app.roles WHERE NOT (role = ANY(:seeded))"), {"seeded": list(ROLES)})
        conn.execute(sa.text("UPDATE app.roles SET version = 1"))
        for role, permission in granted:
            conn.execute(sa.text("INSERT INTO app.role_permissions VALUES (:r, :p)"), {"r": role, "p": permission})


def admin_page(login: str = "root") -> AppTest:
    return log_in(login).switch_page(ADMIN_PAGE).run()


def account(engine: sa.Engine, login: str) -> sa.Row:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT role, is_active, must_change_password FROM app.users WHERE login = :l"), {"l": login}
        ).one()


def test_the_page_lists_accounts_and_is_only_for_user_managers(accounts: sa.Engine) -> None:
    at = admin_page()
    assert not at.exception and not at.error
    assert at.title[0].value == "Administration"
    users = at.dataframe[0].value
    assert list(users["Identifiant"]) == ["alice", "root"] and list(users["Rôle"]) == ["agent", "administrateur"]
    agent = log_in("alice")
    assert not agent.exception and agent.title[0].value == "Dossiers"
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        agent.switch_page(ADMIN_PAGE)  # the router does not register the page for an agent


def test_create_a_user_shows_the_one_time_password_once(accounts: sa.Engine) -> None:
    at = admin_page()
    at.text_input(key="w_admin_new_login").input("Not Valid")
    at.button(key="FormSubmitter:admin_create_user-Créer l'utilisateur").click().run()
    assert [e.value for e in at.error] == ["Identifiant: use 2-64 lowercase letters, digits, '.', '_' or '-'"]
    assert at.text_input(key="w_admin_new_login").value == "Not Valid", "a refused form keeps what was typed"
    at.text_input(key="w_admin_new_login").input("carla")
    at.text_input(key="w_admin_new_name").input("Carla Compta")
    at.selectbox(key="w_admin_new_role").select("accountant")
    at.button(key="FormSubmitter:admin_create_user-Créer l'utilisateur").click().run()
    assert not at.exception and not at.error
    assert at.success[0].value == "Utilisateur carla créé."
    password = at.code[0].value
    assert "carla" in at.warning[0].value and len(password) == 16
    assert "carla" in list(at.dataframe[0].value["Identifiant"])
    assert at.text_input(key="w_admin_new_login").value == ""
    with UnitOfWork(accounts) as uow, pytest.raises(PasswordChangeRequired):
        authenticate(uow, "carla", password)
    at.run()
    assert not at.code, "the password is shown once"


def test_edit_disable_and_reset_an_account(accounts: sa.Engine) -> None:
    at = admin_page()
    at.selectbox(key="w_admin_user").select("root").run()
    at.button(key="FormSubmitter:admin_set_active-Désactiver le compte").click().run()
    assert [e.value for e in at.error] == ["Identifiant: you cannot disable your own account"]
    assert account(accounts, "root").is_active

    at.selectbox(key="w_admin_user").select("alice").run()
    at.selectbox(key="w_admin_edit_role_alice").select("senior_agent")
    at.button(key="FormSubmitter:admin_edit_user-Enregistrer les modifications").click().run()
    assert not at.error and at.success[0].value == "Utilisateur alice enregistré."
    assert account(accounts, "alice").role == "senior_agent"

    at.button(key="FormSubmitter:admin_set_active-Désactiver le compte").click().run()
    assert not at.error and at.success[0].value == "Compte alice désactivé."
    assert not account(accounts, "alice").is_active

    at.button(key="FormSubmitter:admin_reset_password-Réinitialiser le mot de passe").click().run()
    assert not at.error and at.success[0].value == "Mot de passe de alice réinitialisé."
    assert account(accounts, "alice").must_change_password
    assert len(at.code[0].value) == 16


def test_the_matrix_editor_saves_the_edits_in_one_go_and_roles_are_created(accounts: sa.Engine) -> None:
    at = admin_page()
    permissions = list(at.data_editor[0].value["Permission"])
    at.session_state["w_admin_matrix_0"] = {
        "edited_rows": {
            permissions.index("refund"): {"agent": True},
            permissions.index("regulation"): {"agent": False},
        },
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    at.button(key="FormSubmitter:admin_matrix-Enregistrer les permissions").click().run()
    assert not at.exception and not at.error
    assert at.success[0].value == "Permissions enregistrées."
    with UnitOfWork(accounts) as uow:
        agent = load_actor(uow, "alice")
    assert agent.can("refund") and not agent.can("regulation") and agent.can("search_dossiers")
    matrix = at.data_editor[0].value.set_index("Permission")
    assert matrix.loc["refund", "agent"] and not matrix.loc["regulation", "agent"]

    at.text_input(key="w_admin_new_role_id").input("team_lead")
    at.text_input(key="w_admin_new_role_label").input("Chef d'équipe")
    at.button(key="FormSubmitter:admin_create_role-Créer le rôle").click().run()
    assert not at.exception and not at.error and at.success[0].value == "Rôle team_lead créé."
    assert "team_lead" in at.data_editor[0].value.columns
    assert not at.data_editor[0].value["team_lead"].any()


def test_a_one_time_password_is_replaced_at_login(accounts: sa.Engine) -> None:
    with UnitOfWork(accounts) as uow:
        made = create_user(uow, load_actor(uow, "root"), login="dan", role="agent", idempotency_key="dan")
    at = log_in("dan", made.password)
    assert not at.exception and not at.error
    assert at.info[0].value.startswith("Ce mot de passe vous a été donné")
    at.text_input(key="w_new_password").input("my own password")
    at.text_input(key="w_new_password_again").input("my own passwrod")
    submit = "FormSubmitter:change_password-Changer le mot de passe et se connecter"
    at.button(key=submit).click().run()
    assert [e.value for e in at.error] == ["Nouveau mot de passe: les deux mots de passe diffèrent"]
    at.text_input(key="w_new_password_again").input("my own password")
    at.button(key=submit).click().run()
    assert not at.error and at.title[0].value == "Dossiers"
    assert not account(accounts, "dan").must_change_password


def test_a_disabled_account_is_signed_out_at_its_next_click(accounts: sa.Engine) -> None:
    at = log_in("alice")
    assert at.title[0].value == "Dossiers"
    with UnitOfWork(accounts) as uow:
        set_user_active(
            uow, load_actor(uow, "root"), login="alice", active=False, expected_version=1, idempotency_key="x"
        )
    at.run()
    assert not at.exception
    assert "actor" not in at.session_state
    assert at.title[0].value == "Back-office voyages"
    assert at.warning[0].value.startswith("Votre session a pris fin")
