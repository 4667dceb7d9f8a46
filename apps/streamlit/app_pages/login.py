"""Log in with a login and password (app.users); every attempt is audited by the service.

A one-time password (a new account's, or one an administrator reset) is accepted only to choose
a new password: the second form appears under the first, which keeps what was typed in it."""

import streamlit as st
from ui import i18n, readers, state

from backoffice.domain.errors import AuthenticationFailed, DomainError, InvalidInput
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import PasswordChangeRequired, authenticate, change_password

_ = i18n.gettext
ss = st.session_state

st.title(_("Travel back-office"))
if ss.pop(state.SESSION_ENDED, False):
    st.warning(_("Your session has ended: your account was disabled or its password was reset."))
with st.form("login"):
    login = st.text_input(_("Login"), key=state.W_LOGIN)
    password = st.text_input(_("Password"), type="password", key=state.W_PASSWORD)
    submitted = st.form_submit_button(_("Log in"), type="primary")

if submitted:
    ss.pop(state.PASSWORD_CHANGE, None)
    try:
        with UnitOfWork(readers.engine()) as uow:
            actor = authenticate(uow, login.strip(), password)
    except AuthenticationFailed:
        st.error(_("Unknown login or wrong password."))
    except PasswordChangeRequired:
        ss[state.PASSWORD_CHANGE] = login.strip()
    else:
        state.sign_in(actor)
        st.rerun()

if ss.get(state.PASSWORD_CHANGE) and ss[state.PASSWORD_CHANGE] == login.strip():
    st.info(_("This password was given to you by an administrator: choose your own to continue."))
    with st.form("change_password"):
        new_password = st.text_input(_("new_password"), type="password", key=state.W_NEW_PASSWORD)
        again = st.text_input(_("Repeat the new password"), type="password", key=state.W_NEW_PASSWORD_AGAIN)
        changed = st.form_submit_button(_("Change the password and log in"), type="primary")
    if changed:
        try:
            if new_password != again:
                raise InvalidInput("new_password", _("the two passwords differ"))
            with UnitOfWork(readers.engine()) as uow:
                actor = change_password(uow, login.strip(), password, new_password)
        except AuthenticationFailed:
            st.error(_("Unknown login or wrong password."))
        except DomainError as exc:
            st.error(i18n.error(exc))
        else:
            ss.pop(state.PASSWORD_CHANGE, None)
            state.sign_in(actor)
            st.rerun()
