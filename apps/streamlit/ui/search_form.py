"""The search form: one widget per criterion, filled from and read back into SearchCriteria."""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from typing import Any

import streamlit as st

from backoffice.queries.criteria import CHANNELS, MAX_DAYS, STATUSES, SearchCriteria
from ui import i18n, readers, state

_ = i18n.gettext

_TEXTS = ("dossier_number", "client_name", "email", "destination", "supplier_code", "supplier_reference")
_AMOUNTS = ("amount_min", "amount_max")


def _key(name: str) -> str:
    return state.FORM_PREFIX + name


def seed(criteria: SearchCriteria, *, overwrite: bool = False) -> None:
    """Put `criteria` into the form's widgets (only where Streamlit forgot them, unless `overwrite`)."""
    for f in fields(criteria):
        value: Any = getattr(criteria, f.name)
        if f.name in _TEXTS:
            value = value or ""
        elif f.name in _AMOUNTS:
            value = "" if value is None else str(value)
        elif isinstance(value, tuple):
            value = list(value)
        if overwrite or _key(f.name) not in st.session_state:
            st.session_state[_key(f.name)] = value


def read() -> SearchCriteria:
    """The criteria as typed (unvalidated: backoffice.queries validates and names a bad field)."""
    values: dict[str, Any] = {}
    for f in fields(SearchCriteria):
        value = st.session_state.get(_key(f.name))
        if f.name in _TEXTS or f.name in _AMOUNTS:
            value = (value or "").strip() or None
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    values["balance_unpaid"] = bool(values["balance_unpaid"])
    return SearchCriteria(**values)


def _date(name: str) -> date | None:
    return st.date_input(_(name), value=None, key=_key(name), format=_("YYYY/MM/DD"))


def _days(name: str) -> int | None:
    return st.number_input(_(name), value=None, min_value=0, max_value=MAX_DAYS, step=1, key=_key(name))


def render() -> bool:
    """Draw the form; True when it was submitted."""
    tr = i18n.translator()
    with st.form("search"):
        a, b, c = st.columns(3)
        a.text_input(_("dossier_number"), key=_key("dossier_number"), placeholder="BK-2026-")
        b.text_input(_("client_name"), key=_key("client_name"), placeholder=_("e.g. Dupont Jean"))
        c.text_input(_("email"), key=_key("email"))
        a.multiselect(_("statuses"), STATUSES, format_func=tr, key=_key("statuses"))
        options = sorted(set(readers.brands()) | set(st.session_state.get(_key("brands")) or []))
        b.multiselect(_("brands"), options, key=_key("brands"))
        c.multiselect(_("channels"), CHANNELS, format_func=tr, key=_key("channels"))
        with st.expander(_("More criteria")):
            a, b, c = st.columns(3)
            a.text_input(_("destination"), key=_key("destination"))
            b.text_input(_("supplier_code"), key=_key("supplier_code"))
            c.text_input(_("supplier_reference"), key=_key("supplier_reference"))
            with a:
                _date("created_from")
                _date("departure_from")
                st.text_input(_("amount_min"), key=_key("amount_min"), placeholder="0.00")
            with b:
                _date("created_to")
                _date("departure_to")
                st.text_input(_("amount_max"), key=_key("amount_max"), placeholder="0.00")
            with c:
                _days("departure_within_days")
                _days("updated_within_days")
                st.checkbox(_("balance_unpaid"), key=_key("balance_unpaid"))
        return st.form_submit_button(_("Search"), type="primary")
