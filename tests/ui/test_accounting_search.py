"""The Accounting search page through AppTest, on the real database and dbt's billing views: supplier
invoices with their dossiers' billing status, a search list saved, shared, applied, renamed and
deleted, and the page refused without `view_accounting`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from backoffice.domain.permissions import Actor

# The data builders of the service-boundary tests of the same lists.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from test_accounting_search_lists import _matched_by_hand, _supplier_invoice, billing_views

APP = Path(__file__).resolve().parents[2] / "apps" / "streamlit"
PAGE = str(APP / "app_pages" / "accounting_search.py")
CARLA = Actor("carla", "accountant", frozenset({"view_accounting", "share_searches"}), locale="fr")
CHLOE = Actor("chloe", "accountant", frozenset({"view_accounting"}), locale="en")
ALICE = Actor("alice", "agent", frozenset({"search_dossiers"}), locale="en")


@pytest.fixture
def invoices(db: sa.Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    billing_views(database_url)
    monkeypatch.syspath_prepend(str(APP))
    f.user(db, "carla", "accountant")
    f.user(db, "chloe", "accountant")
    dupont = f.dossier(db, client_last_name="Dupont")
    martin = f.dossier(db, client_last_name="Martin")
    _supplier_invoice(db, "HOTEL01", "F-100", "invoice", date(2026, 3, 2), "800.00")
    _supplier_invoice(db, "HOTEL01", "F-102", "invoice", date(2026, 3, 20), "5000.00")
    _supplier_invoice(db, "AIR01", "A-7", "credit_note", date(2026, 3, 5), "90.00")
    _matched_by_hand(db, "HOTEL01", "F-100", dupont)
    _matched_by_hand(db, "HOTEL01", "F-102", martin)
    st.cache_data.clear()
    yield {"dupont": dupont, "martin": martin}
    st.cache_data.clear()


def open_page(actor: Actor) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["actor"] = actor
    at.session_state["locale"] = actor.locale
    at.session_state["idempotency_keys"] = {}  # what the router's state.init() sets up
    at.run()
    return at.radio(key="w_acct_scope").set_value("supplier_invoices").run()


def numbers(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["Numéro" if at.session_state["locale"] == "fr" else "Number"])


def test_search_save_share_apply_rename_and_delete_a_list(invoices: dict[str, str]) -> None:
    at = open_page(CARLA)
    assert not at.exception and not at.error
    assert at.title[0].value == "Recherche comptable"
    assert numbers(at) == ["F-102", "A-7", "F-100"]
    table = at.dataframe[0].value
    assert list(table["Dossiers et statut de facturation"]) == [
        f"{invoices['martin']} (surfacturé)",
        "",
        f"{invoices['dupont']} (facturé)",
    ]

    at.multiselect(key="w_acct_supplier_invoices_billing_statuses").set_value(["over_invoiced"])
    at = at.button(key="FormSubmitter:acct_criteria_supplier_invoices-Rechercher").click().run()
    assert numbers(at) == ["F-102"]
    at.text_input(key="w_acct_save_name_supplier_invoices").input("Surfacturées")
    at.selectbox(key="w_acct_save_share_supplier_invoices").set_value("accountant")
    at = at.button(key="FormSubmitter:acct_save_supplier_invoices-Enregistrer").click().run()
    assert not at.error and [s.value for s in at.success] == ["Recherche enregistrée."]

    # A colleague sees the shared list and applies it.
    other = open_page(CHLOE)
    assert len(other.dataframe[0].value) == 3
    listed = [b for b in other.button if b.key and b.key.startswith("w_acct_list_")]
    assert [b.label for b in listed] == ["Surfacturées (carla)"]
    other = listed[0].click().run()
    assert numbers(other) == ["F-102"]

    search_id = next(b.key for b in at.button if b.key and b.key.startswith("w_acct_list_")).rsplit("_", 1)[1]
    at.text_input(key=f"w_acct_edit_name_{search_id}").input("Trop facturées")
    at.selectbox(key=f"w_acct_edit_share_{search_id}").select_index(0)  # "Only me"
    at = at.button(key=f"FormSubmitter:acct_edit_{search_id}-Enregistrer les modifications").click().run()
    assert not at.error and [s.value for s in at.success] == ["Recherche modifiée."]
    assert [b.label for b in at.button if b.key and b.key.startswith("w_acct_list_")] == ["Trop facturées"]
    assert not [b for b in open_page(CHLOE).button if b.key and b.key.startswith("w_acct_list_")]

    at = at.button(key=f"w_acct_delete_{search_id}").click().run()
    assert not at.error and not [b for b in at.button if b.key and b.key.startswith("w_acct_list_")]


def test_a_bad_amount_is_named_and_the_page_needs_view_accounting(invoices: dict[str, str]) -> None:
    at = open_page(CHLOE)
    at.text_input(key="w_acct_supplier_invoices_amount_min").input("ten")
    at = at.button(key="FormSubmitter:acct_criteria_supplier_invoices-Search").click().run()
    assert next(e.value for e in at.error).startswith("Minimum amount: ")
    refused = AppTest.from_file(PAGE, default_timeout=30)
    refused.session_state["actor"] = ALICE
    refused.session_state["locale"] = "en"
    refused.run()
    assert [e.value for e in refused.error] == [
        "alice is not allowed to do this (needs the 'view_accounting' permission)"
    ]
    assert not refused.dataframe
