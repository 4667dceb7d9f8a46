"""The price adjustment form of the Devis tab: adds a line, shows the refusal as the service words it,
hidden without the right."""

from __future__ import annotations

import factories as f
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest
from test_app import log_in

SUBMIT = "FormSubmitter:price_adjustment-Ajouter l'ajustement"


def open_devis(login: str, number: str) -> AppTest:
    at = log_in(login)
    at.session_state["open_dossier"] = number
    return at.switch_page("app_pages/dossier.py").run()


def fill(at: AppTest, reason: str, sale: str = "-50.00") -> AppTest:
    at.selectbox(key="w_adjust_service").set_value("H1")
    at.text_input(key="w_adjust_label").input("Geste commercial")
    at.text_input(key="w_adjust_sale").input(sale)
    at.text_area(key="w_adjust_reason").input(reason)
    return at.button(key=SUBMIT).click().run()


def test_an_adjustment_appears_in_the_devis_and_the_form_is_emptied(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None
) -> None:
    at = fill(open_devis("alice", seeded["dupont"]), "retard du transfert")
    assert not at.exception and not at.error
    lines = at.tabs[0].dataframe[0].value
    added = lines[lines["Origine"] == "ajustement"]
    assert list(added["Motif"]) == ["retard du transfert"] and list(added["Créée par"]) == ["alice"]
    assert at.text_input(key="w_adjust_label").value == ""
    with db.connect() as conn:
        version, total = conn.execute(
            sa.text("SELECT version, sale_total FROM app.dossiers WHERE dossier_number = :n"),
            {"n": seeded["dupont"]},
        ).one()
    assert version == 2 and str(total) == "2430.00"


def test_a_refusal_names_the_field_and_keeps_what_was_typed(seeded: dict[str, str], price_lines_mart: None) -> None:
    at = fill(open_devis("alice", seeded["dupont"]), "", sale="10.005")
    assert [e.value for e in at.error] == ["Prix de vente unitaire: '10.005' has more than 2 decimals"]
    assert at.text_input(key="w_adjust_label").value == "Geste commercial"


def test_without_the_permission_the_form_is_hidden(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None
) -> None:
    f.user(db, "carla", "accountant")
    at = open_devis("carla", seeded["dupont"])
    assert not at.exception
    assert not [b for b in at.button if b.key == SUBMIT]


def test_an_english_user_submits_the_form_too(seeded: dict[str, str], price_lines_mart: None) -> None:
    """Widgets translated by a format function keep working in English: AppTest maps each chosen
    option back to its label outside the script run, where the session's language is unknown."""
    at = open_devis("bob", seeded["dupont"])
    at.selectbox(key="w_adjust_service").set_value("H1")
    at.text_input(key="w_adjust_label").input("Goodwill gesture")
    at.text_input(key="w_adjust_sale").input("-5.00")
    at.text_area(key="w_adjust_reason").input("late transfer")
    at = at.button(key="FormSubmitter:price_adjustment-Add the adjustment").click().run()
    assert not at.exception and not at.error
    lines = at.tabs[0].dataframe[0].value
    assert list(lines[lines["Origin"] == "adjustment"]["Reason"]) == ["late transfer"]
