"""Log in with a login and password (app.users); every attempt is audited by the service.

A one-time password (a new account's, or one an administrator reset) is accepted only to choose
a new password: the second form appears under the first, which keeps what was typed in it.
Too many failures for a login, or from one client address, lock it for a while
(backoffice.services.sessions); a successful login opens a server-side session."""

import streamlit as st
from ui import i18n, readers, state

from backoffice.config import get_settings
from backoffice.domain.errors import AuthenticationFailed, DomainError, InvalidInput
from backoffice.services import sessions
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import PasswordChangeRequired

_ = i18n.gettext
ss = st.session_state


def ended_message(reason: str) -> str:
    settings = get_settings()
    if reason == sessions.IDLE:
        return _("Your session ended after {minutes} minutes without activity: log in again.").format(
            minutes=settings.session_idle_minutes
        )
    if reason == sessions.EXPIRED:
        return _("Your session reached its maximum length of {hours} hours: log in again.").format(
            hours=settings.session_absolute_hours
        )
    if reason == sessions.ACCOUNT_CLOSED:
        return _("Your session has ended: your account was disabled or its password was reset.")
    return _("Your session has ended: log in again.")


def throttled_message(error: sessions.LoginThrottled) -> str:
    return _("Too many failed attempts: try again in {minutes} minutes.").format(minutes=error.minutes)


st.title(_("Travel back-office"))
ended = ss.pop(state.SESSION_ENDED, None)
if ended:
    st.warning(ended_message(ended))
with st.form("login"):
    login = st.text_input(_("Login"), key=state.W_LOGIN)
    password = st.text_input(_("Password"), type="password", key=state.W_PASSWORD)
    submitted = st.form_submit_button(_("Log in"), type="primary")
# The browser's address, when Streamlit knows one (a proxy may hide it; a test run has none):
# failures from one client are throttled over every login it tries.
address = st.context.ip_address
client = address if isinstance(address, str) else None

if submitted:
    ss.pop(state.PASSWORD_CHANGE, None)
    try:
        with UnitOfWork(readers.engine()) as uow:
            session = sessions.log_in(uow, login.strip(), password, client=client)
    except sessions.LoginThrottled as error:
        st.error(throttled_message(error))
    except AuthenticationFailed:
        st.error(_("Unknown login or wrong password."))
    except PasswordChangeRequired:
        ss[state.PASSWORD_CHANGE] = login.strip()
    else:
        state.start_session(session)
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
                session = sessions.change_password_and_log_in(uow, login.strip(), password, new_password, client=client)
        except sessions.LoginThrottled as error:
            st.error(throttled_message(error))
        except AuthenticationFailed:
            st.error(_("Unknown login or wrong password."))
        except DomainError as exc:
            st.error(i18n.error(exc))
        else:
            ss.pop(state.PASSWORD_CHANGE, None)
            state.start_session(session)
            st.rerun()
