"""The Suppliers page: set a supplier's address; a bad one is refused with the field named; hidden without the right."""

from __future__ import annotations

import factories as f
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest
from test_app import log_in

SAVE = "FormSubmitter:supplier_contact_HOT02-Enregistrer"


def open_suppliers(db: sa.Engine) -> AppTest:
    f.supplier(db, "AIR01", email="resa@air01.example")
    f.supplier(db, "HOT02", name="Hôtel Deux")
    f.user(db, "sofia", "senior_agent", f.PASSWORD, locale="fr")
    at = log_in("sofia").switch_page("app_pages/suppliers.py").run()
    assert not at.exception
    assert at.selectbox(key="w_supplier_code").value == "HOT02"  # those without an address come first
    return at


def test_a_senior_agent_sets_an_address(db: sa.Engine, seeded: dict[str, str]) -> None:
    at = open_suppliers(db)
    at.text_input(key="w_supplier_email_HOT02").input("resa@hot02.example")
    at.selectbox(key="w_supplier_language_HOT02").set_value("en")
    at = at.button(key=SAVE).click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["Contact du fournisseur enregistré."]
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT email, language FROM app.suppliers WHERE supplier_code = 'HOT02'")).one()
    assert tuple(row) == ("resa@hot02.example", "en")


def test_a_bad_address_is_refused_with_the_field_named(db: sa.Engine, seeded: dict[str, str]) -> None:
    at = open_suppliers(db)
    at.text_input(key="w_supplier_email_HOT02").input("not an address")
    at = at.button(key=SAVE).click().run()
    assert [e.value for e in at.error] == ["E-mail: 'not an address' is not a valid e-mail address"]


def test_an_agent_has_no_suppliers_page(seeded: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        log_in("alice").switch_page("app_pages/suppliers.py").run()
