"""Small pieces shared by pages: the account sidebar and how values are shown."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ui import i18n, state

_ = i18n.gettext


def account_sidebar() -> None:
    who = state.actor()
    if who is None:
        return
    with st.sidebar:
        st.markdown(f"**{who.login}** · {_(who.role)}")
        st.button(_("Log out"), on_click=state.sign_out, key="w_logout")


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
