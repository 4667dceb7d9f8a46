"""Small pieces shared by pages: the account sidebar (language, log out) and how values are shown."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from backoffice.domain.errors import DomainError
from backoffice.domain.permissions import Actor
from backoffice.services import sessions
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import set_locale
from ui import i18n, readers, state

_ = i18n.gettext
# Each language named in itself: a user who cannot read the current one still finds theirs.
LANGUAGE_NAMES = {"fr": "Français", "en": "English"}


def refresh_actor() -> None:
    """Check the session and re-read the logged-in account at every run, before any page calls a service.

    A session keeps an `Actor`; without this, an account disabled (or whose password was reset)
    would keep working until it logged out, and a role change would wait for the next login. The
    server-side session ends here too when it was idle or open too long (backoffice.services.sessions)."""
    who = state.actor()
    if who is None:
        return
    try:
        with UnitOfWork(readers.engine()) as uow:
            current = sessions.resume(uow, state.session_token())
    except sessions.SessionEnded as ended:
        state.sign_out()
        state.init()
        st.session_state[state.SESSION_ENDED] = ended.reason
        return
    if current != who:
        state.sign_in(current)


def log_out() -> None:
    """End the session on the server, then forget everything this browser tab held."""
    with UnitOfWork(readers.engine()) as uow:
        sessions.log_out(uow, state.session_token())
    state.sign_out()


def account_sidebar() -> None:
    who = state.actor()
    if who is None:
        return
    with st.sidebar:
        st.markdown(f"**{who.login}** · {_(who.role)}")
        chosen = st.selectbox(
            _("Language"),
            list(LANGUAGE_NAMES),
            index=list(LANGUAGE_NAMES).index(who.locale),
            format_func=LANGUAGE_NAMES.__getitem__,
            key="w_language",
        )
        if chosen != who.locale:
            _change_language(who, chosen)
        st.button(_("Log out"), on_click=log_out, key="w_logout")


def _change_language(who: Actor, locale: str) -> None:
    try:
        with UnitOfWork(readers.engine()) as uow:
            refreshed = set_locale(uow, who, locale)
    except DomainError as exc:
        st.error(i18n.error(exc))
        return
    state.sign_in(refreshed)
    # Everything drawn so far is in the old language: start again so the whole interface switches.
    st.rerun()


def table(rows: list[dict[str, Any]], empty: str, **options: Any) -> None:
    """Rows as a read-only table, or the `empty` sentence when there are none."""
    if not rows:
        st.caption(empty)
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, **options)


def flash() -> None:
    """Show, once, the message a previous run left (a write's confirmation survives its rerun)."""
    message = st.session_state.pop(state.FLASH, None)
    if message:
        st.success(message)
