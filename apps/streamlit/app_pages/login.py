"""Log in with a login and password (app.users); every attempt is audited by the service."""

import streamlit as st
from ui import i18n, readers, state

from backoffice.domain.errors import AuthenticationFailed
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import authenticate

_ = i18n.gettext

st.title(_("Travel back-office"))
with st.form("login"):
    login = st.text_input(_("Login"), key=state.W_LOGIN)
    password = st.text_input(_("Password"), type="password", key=state.W_PASSWORD)
    submitted = st.form_submit_button(_("Log in"), type="primary")

if submitted:
    try:
        with UnitOfWork(readers.engine()) as uow:
            actor = authenticate(uow, login.strip(), password)
    except AuthenticationFailed:
        st.error(_("Unknown login or wrong password."))
    else:
        state.sign_in(actor)
        st.rerun()
