"""Admin: accounts (create, edit, enable/disable, reset password), roles and the role x permission matrix.

Shown by the router only to `manage_users`; every service here checks that permission again.
A one-time password is shown once, after the rerun that follows its creation, then forgotten.
"""

import pandas as pd
import streamlit as st
from ui import i18n, readers, state, widgets

from backoffice.domain.errors import DomainError
from backoffice.domain.permissions import ROLES
from backoffice.services.admin import (
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
from backoffice.services.users import LOCALES, list_users

_ = i18n.gettext
ss = st.session_state
actor = state.actor()
assert actor is not None, "the router shows this page only to a logged-in user"

st.title(_("Admin"))
widgets.flash()
shown = ss.pop(state.ONE_TIME_PASSWORD, None)
if shown:
    login, password = shown
    st.warning(
        _("One-time password of {login}, shown only now: hand it over; it must be changed at the first login.").format(
            login=login
        )
    )
    st.code(password, language=None)

try:
    with UnitOfWork(readers.engine()) as uow:
        users = list_users(uow, actor)
        roles = list_roles(uow, actor)
        permissions = list_permissions(uow, actor)
except DomainError as exc:
    st.error(i18n.error(exc))
    st.stop()

role_labels = {r.role: r.label for r in roles}


def role_name(role: str) -> str:
    # The built-in roles are translated; a role created here is shown with its label.
    return _(role) if role in ROLES else role_labels.get(role, role)


def done(form: str, message: str) -> None:
    state.renew_key(form)
    ss[state.FLASH] = message
    st.rerun()


accounts_tab, roles_tab = st.tabs([_("Users"), _("Roles and permissions")])

with accounts_tab:
    widgets.table(
        [
            {
                _("Login"): u.login,
                _("display_name"): u.display_name,
                _("role"): role_name(u.role),
                _("locale"): u.locale,
                _("Enabled"): u.is_active,
                _("Must change password"): u.must_change_password,
                _("Created at"): i18n.moment(u.created_at),
            }
            for u in users
        ],
        _("No users."),
    )

    with st.form("admin_create_user"):
        st.markdown(f"**{_('Create a user')}**")
        left, right = st.columns(2)
        new_login = left.text_input(_("login"), key=state.W_ADMIN_NEW_LOGIN)
        new_name = right.text_input(_("display_name"), key=state.W_ADMIN_NEW_NAME)
        new_role = left.selectbox(_("role"), list(role_labels), format_func=role_name, key=state.W_ADMIN_NEW_ROLE)
        new_locale = right.selectbox(_("locale"), LOCALES, key=state.W_ADMIN_NEW_LOCALE)
        if st.form_submit_button(_("Create the user")):
            try:
                with UnitOfWork(readers.engine()) as uow:
                    created = create_user(
                        uow,
                        actor,
                        login=new_login.strip(),
                        role=new_role,
                        display_name=new_name,
                        locale=new_locale,
                        idempotency_key=state.idempotency_key("admin_create_user"),
                    )
            except DomainError as exc:
                st.error(i18n.error(exc))
            else:
                ss[state.ONE_TIME_PASSWORD] = (created.user.login, created.password)
                for widget in (state.W_ADMIN_NEW_LOGIN, state.W_ADMIN_NEW_NAME):
                    ss.pop(widget, None)
                done("admin_create_user", _("User {login} created.").format(login=created.user.login))

    st.divider()
    by_login = {u.login: u for u in users}
    chosen = st.selectbox(_("Account to manage"), list(by_login), index=None, key=state.W_ADMIN_USER)
    if chosen is not None:
        user = by_login[chosen]
        with st.form("admin_edit_user"):
            st.markdown(f"**{_('Edit {login}').format(login=user.login)}**")
            edit_name = st.text_input(
                _("display_name"), value=user.display_name, key=f"{state.W_ADMIN_EDIT_NAME}_{user.login}"
            )
            role_ids = list(role_labels)
            edit_role = st.selectbox(
                _("role"),
                role_ids,
                index=role_ids.index(user.role),
                format_func=role_name,
                key=f"{state.W_ADMIN_EDIT_ROLE}_{user.login}",
            )
            if st.form_submit_button(_("Save the changes")):
                try:
                    with UnitOfWork(readers.engine()) as uow:
                        update_user(
                            uow,
                            actor,
                            login=user.login,
                            role=edit_role,
                            display_name=edit_name,
                            expected_version=user.version,
                            idempotency_key=state.idempotency_key("admin_edit_user"),
                        )
                except DomainError as exc:
                    st.error(i18n.error(exc))
                else:
                    done("admin_edit_user", _("User {login} saved.").format(login=user.login))

        left, right = st.columns(2)
        with left.form("admin_set_active"):
            if user.is_active:
                st.caption(_("A disabled account cannot log in; its open sessions end at their next click."))
            toggle = st.form_submit_button(_("Disable the account") if user.is_active else _("Enable the account"))
            if toggle:
                try:
                    with UnitOfWork(readers.engine()) as uow:
                        set_user_active(
                            uow,
                            actor,
                            login=user.login,
                            active=not user.is_active,
                            expected_version=user.version,
                            idempotency_key=state.idempotency_key("admin_set_active"),
                        )
                except DomainError as exc:
                    st.error(i18n.error(exc))
                else:
                    message = _("Account {login} disabled.") if user.is_active else _("Account {login} enabled.")
                    done("admin_set_active", message.format(login=user.login))

        with right.form("admin_reset_password"):
            st.caption(_("A one-time password replaces the current one; it must be changed at the next login."))
            if st.form_submit_button(_("Reset the password")):
                try:
                    with UnitOfWork(readers.engine()) as uow:
                        reset = reset_password(
                            uow,
                            actor,
                            login=user.login,
                            expected_version=user.version,
                            idempotency_key=state.idempotency_key("admin_reset_password"),
                        )
                except DomainError as exc:
                    st.error(i18n.error(exc))
                else:
                    ss[state.ONE_TIME_PASSWORD] = (reset.user.login, reset.password)
                    done("admin_reset_password", _("Password of {login} reset.").format(login=user.login))

with roles_tab:
    # The editor edits the matrix as it was first drawn, so that a concurrent change by another
    # administrator is refused as stale (the versions travel with it) instead of being merged silently.
    seen = ss.setdefault(state.ADMIN_ROLES_SEEN, roles)
    generation = ss.setdefault(state.ADMIN_MATRIX_GENERATION, 0)
    descriptions = {p.permission: p.description for p in permissions}
    matrix = pd.DataFrame(
        {
            _("Permission"): list(descriptions),
            _("Description"): list(descriptions.values()),
            **{r.role: [p in r.permissions for p in descriptions] for r in seen},
        }
    )

    def reload_matrix() -> None:
        ss.pop(state.ADMIN_ROLES_SEEN, None)
        ss[state.ADMIN_MATRIX_GENERATION] = generation + 1

    with st.form("admin_matrix"):
        st.markdown(f"**{_('Permissions of each role')}**")
        edited = st.data_editor(
            matrix,
            hide_index=True,
            disabled=[_("Permission"), _("Description")],
            column_config={r.role: st.column_config.CheckboxColumn(role_name(r.role)) for r in seen},
            key=f"{state.W_ADMIN_MATRIX}_{generation}",
        )
        if st.form_submit_button(_("Save the permissions")):
            desired = {
                r.role: {p for p, granted in zip(descriptions, edited[r.role], strict=True) if granted} for r in seen
            }
            try:
                with UnitOfWork(readers.engine()) as uow:
                    set_role_permissions(
                        uow,
                        actor,
                        desired=desired,
                        expected_versions={r.role: r.version for r in seen},
                        idempotency_key=state.idempotency_key("admin_matrix"),
                    )
            except DomainError as exc:
                st.error(i18n.error(exc))
            else:
                reload_matrix()
                done("admin_matrix", _("Permissions saved."))
    st.button(_("Reload the permissions"), on_click=reload_matrix, key="w_admin_matrix_reload")

    widgets.table(
        [{_("Role"): r.role, _("label"): r.label, _("Users"): r.users} for r in roles],
        _("No roles."),
    )
    with st.form("admin_create_role"):
        st.markdown(f"**{_('Create a role')}**")
        left, right = st.columns(2)
        role_id = left.text_input(_("role"), key=state.W_ADMIN_NEW_ROLE_ID, help=_("For example: team_lead"))
        role_label = right.text_input(_("label"), key=state.W_ADMIN_NEW_ROLE_LABEL)
        if st.form_submit_button(_("Create the role")):
            try:
                with UnitOfWork(readers.engine()) as uow:
                    create_role(
                        uow,
                        actor,
                        role=role_id.strip(),
                        label=role_label,
                        idempotency_key=state.idempotency_key("admin_create_role"),
                    )
            except DomainError as exc:
                st.error(i18n.error(exc))
            else:
                for widget in (state.W_ADMIN_NEW_ROLE_ID, state.W_ADMIN_NEW_ROLE_LABEL):
                    ss.pop(widget, None)
                reload_matrix()
                done("admin_create_role", _("Role {role} created.").format(role=role_id.strip()))
