"""Cached reads. The engine is one per process; readers expire quickly and are cleared after writes."""

from __future__ import annotations

import json

import streamlit as st
from sqlalchemy.engine import Engine

from backoffice.db.engine import get_engine
from backoffice.domain.permissions import Actor
from backoffice.queries import criteria as criteria_json
from backoffice.queries.dossier import DossierView, dossier_view
from backoffice.queries.search import SearchPage, list_brands, search
from backoffice.services.saved_searches import SavedSearch, list_searches
from backoffice.services.unit_of_work import UnitOfWork


@st.cache_resource
def engine() -> Engine:
    return get_engine()


# Criteria travel as their JSON so the cache key is a plain string.
@st.cache_data(ttl=30, show_spinner=False)
def search_page(criteria: str, sort: str, descending: bool, page: int, page_size: int) -> SearchPage:
    with engine().connect() as conn:
        return search(conn, criteria_json.from_dict(json.loads(criteria)), sort, descending, page, page_size)


@st.cache_data(ttl=300, show_spinner=False)
def brands() -> list[str]:
    with engine().connect() as conn:
        return list_brands(conn)


@st.cache_data(ttl=30, show_spinner=False)
def dossier(number: str) -> DossierView:
    with engine().connect() as conn:
        return dossier_view(conn, number)


@st.cache_data(ttl=60, show_spinner=False)
def saved_searches(_actor: Actor, login: str, role: str) -> list[SavedSearch]:
    """`login` and `role` are the cache key; the underscored actor is not hashed."""
    with UnitOfWork(engine()) as uow:
        return list_searches(uow, _actor)
