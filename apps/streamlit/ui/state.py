"""Every session-state key the app uses, declared here so pages never invent one.

Widgets are forgotten by Streamlit when their page is not shown, so what must survive a visit
to another page (the search, its sort and page) lives under keys no widget owns; widget keys
(prefix `w_`) are seeded from them each time the page is drawn.
"""

from __future__ import annotations

import uuid

import streamlit as st

from backoffice.domain.permissions import Actor
from backoffice.queries.criteria import SearchCriteria

ACTOR = "actor"
LOCALE = "locale"
CRITERIA = "criteria"
SORT = "sort"
DESCENDING = "descending"
PAGE = "page"
PAGE_SIZE = "page_size"
OPEN_DOSSIER = "open_dossier"
# Bumped to give the results table a fresh key: its old row selection must not reopen a dossier.
RESULTS_GENERATION = "results_generation"
IDEMPOTENCY_KEYS = "idempotency_keys"
FLASH = "flash"

W_SORT = "w_sort"
W_DESCENDING = "w_descending"
W_PAGE_SIZE = "w_page_size"
W_SAVE_NAME = "w_save_name"
W_SAVE_SHARE = "w_save_share"
W_OPEN_NUMBER = "w_open_number"
W_LOGIN = "w_login"
W_PASSWORD = "w_password"
RESULTS_TABLE = "w_results"
# Search form widgets: one per SearchCriteria field, named `w_criterion_<field>`.
FORM_PREFIX = "w_criterion_"

DEFAULTS = {
    CRITERIA: SearchCriteria(),
    SORT: "departure_date",
    DESCENDING: False,
    PAGE: 1,
    PAGE_SIZE: 25,
    RESULTS_GENERATION: 0,
}


def init() -> None:
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    st.session_state.setdefault(IDEMPOTENCY_KEYS, {})


def actor() -> Actor | None:
    return st.session_state.get(ACTOR)


def sign_in(who: Actor) -> None:
    st.session_state[ACTOR] = who
    st.session_state[LOCALE] = who.locale


def sign_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def idempotency_key(form: str) -> str:
    """The key of this render of `form`: stable across reruns until `renew_key` after success."""
    return st.session_state[IDEMPOTENCY_KEYS].setdefault(form, uuid.uuid4().hex)


def renew_key(form: str) -> None:
    st.session_state[IDEMPOTENCY_KEYS].pop(form, None)


def results_table_key() -> str:
    return f"{RESULTS_TABLE}_{st.session_state[RESULTS_GENERATION]}"


def open_dossier(number: str) -> None:
    st.session_state[OPEN_DOSSIER] = number
    st.session_state[RESULTS_GENERATION] += 1
