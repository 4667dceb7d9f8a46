"""The Streamlit app through AppTest: log in, search, open a dossier."""

from __future__ import annotations

import sqlalchemy as sa
from factories import APP_SCRIPT, PASSWORD
from streamlit.testing.v1 import AppTest


def start() -> AppTest:
    return AppTest.from_file(APP_SCRIPT, default_timeout=20).run()


def log_in(login: str, password: str = PASSWORD) -> AppTest:
    at = start()
    at.text_input(key="w_login").input(login)
    at.text_input(key="w_password").input(password)
    return at.button[0].click().run()


def show_section(at: AppTest, section: str) -> AppTest:
    """Switch the open Dossier page to a section (an id of its SECTIONS): only the open one is drawn."""
    at.session_state["open_section"] = section
    return at.run()


def test_wrong_password_is_refused_with_a_clear_message(seeded: dict[str, str]) -> None:
    at = log_in("alice", "not the password")
    assert not at.exception
    assert [e.value for e in at.error] == ["Identifiant inconnu ou mot de passe erroné."]
    assert "actor" not in at.session_state
    assert at.title[0].value == "Back-office voyages"


def test_login_shows_the_list_in_the_users_language(seeded: dict[str, str]) -> None:
    at = log_in("alice")
    assert not at.exception and not at.error
    assert at.title[0].value == "Dossiers"
    table = at.dataframe[0].value
    assert sorted(table["Dossier"]) == sorted(seeded.values())
    assert "2\u202f480,00\xa0€" in set(table["Montant"])
    english = log_in("bob")
    assert english.title[0].value == "Dossiers" and "€2,480.00" in set(english.dataframe[0].value["Amount"])


def test_search_by_misspelt_client_name(seeded: dict[str, str]) -> None:
    at = log_in("alice")
    at.text_input(key="w_criterion_client_name").input("dupond")
    at.button(key="FormSubmitter:search-Rechercher").click().run()
    assert list(at.dataframe[0].value["Dossier"]) == [seeded["dupont"]]


def test_invalid_criterion_names_the_field(seeded: dict[str, str]) -> None:
    at = log_in("alice")
    at.text_input(key="w_criterion_amount_min").input("12,5")
    at.button(key="FormSubmitter:search-Rechercher").click().run()
    assert at.error[0].value.startswith("Montant minimum:")


def test_shortcut_and_logout(seeded: dict[str, str]) -> None:
    at = log_in("alice")
    at.button(key="w_shortcut_options_to_confirm").click().run()
    assert list(at.dataframe[0].value["Dossier"]) == [seeded["martin"]]
    at.button(key="w_logout").click().run()
    assert at.title[0].value == "Back-office voyages"


def test_open_a_dossier_shows_every_section_and_the_devis(seeded: dict[str, str], price_lines_mart: None) -> None:
    at = log_in("alice")
    at.session_state["open_dossier"] = seeded["dupont"]
    at.switch_page("app_pages/dossier.py").run()
    assert not at.exception and not at.error
    assert at.title[0].value.startswith(seeded["dupont"])
    labels = [t.label for t in at.tabs]
    assert labels == [
        "Devis",
        "Client",
        "Voyageurs",
        "Prestations",
        "Paiements",
        "Modifications",
        "Documents",
        "Factures client",
        "Factures fournisseurs",
        "Historique",
    ]
    devis = at.tabs[0].dataframe[0].value
    assert list(devis["Libellé"]) == [
        "Vol aller-retour",
        "Chambre double vue mer",
        "Transfert privé",
        "Régularisation hôtel",
    ]
    assert list(devis["Origine"]) == ["réservation"] * 3 + ["régularisation"]
    assert list(devis["Total vente"])[1] == "1\u202f960,00\xa0€"
    assert [m.value for m in at.tabs[0].metric] == ["2\u202f480,00\xa0€", "2\u202f045,50\xa0€"]
    assert "Aucune modification." in [c.value for c in show_section(at, "modifications").tabs[5].caption]


def test_unknown_dossier_says_so(seeded: dict[str, str], price_lines_mart: None) -> None:
    at = log_in("alice")
    at.session_state["open_dossier"] = "BK-0000-000000"
    at.switch_page("app_pages/dossier.py").run()
    assert at.error[0].value == "Le dossier BK-0000-000000 n'existe pas."


def test_saving_a_search_adds_a_shortcut(seeded: dict[str, str]) -> None:
    at = log_in("alice")
    at.text_input(key="w_criterion_client_name").input("martin")
    at.button(key="FormSubmitter:search-Rechercher").click().run()
    at.text_input(key="w_save_name").input("Les Martin")
    at.button(key="FormSubmitter:save_search-Enregistrer").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Recherche enregistrée."]
    assert any(b.label == "Les Martin" for b in at.button)


def test_editing_a_saved_search_renames_it_and_replaces_its_criteria(seeded: dict[str, str], db: sa.Engine) -> None:
    at = log_in("alice")
    at.text_input(key="w_criterion_client_name").input("martin")
    at.button(key="FormSubmitter:search-Rechercher").click().run()
    at.text_input(key="w_save_name").input("Les Martin")
    at.button(key="FormSubmitter:save_search-Enregistrer").click().run()
    saved_id = next(b.key for b in at.button if b.key and b.key.startswith("w_delete_")).removeprefix("w_delete_")
    at.text_input(key="w_criterion_client_name").input("dupont")
    at.button(key="FormSubmitter:search-Rechercher").click().run()
    at.text_input(key=f"w_edit_name_{saved_id}").input("Les Dupont")
    at.checkbox(key=f"w_edit_replace_{saved_id}").check()
    at.button(key=f"FormSubmitter:edit_search_{saved_id}-Enregistrer les modifications").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Recherche modifiée."]
    labels = [b.label for b in at.button]
    assert "Les Dupont" in labels and "Les Martin" not in labels
    with db.connect() as conn:
        stored = conn.execute(sa.text("SELECT criteria, version FROM app.saved_searches")).one()
    assert stored.criteria["criteria"]["client_name"] == "dupont" and stored.version == 2
