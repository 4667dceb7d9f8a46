"""The regulation forms through AppTest: the single-dossier form of the Devis tab, and the Regulations
page (paste numbers, preview, apply with a progress bar, undo)."""

from __future__ import annotations

from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest
from test_app import log_in

from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor

APP = Path(__file__).resolve().parents[2] / "apps" / "streamlit"

SINGLE = "w_dossier_regulation_"
MASS = "w_mass_regulation_"
SINGLE_SUBMIT = "FormSubmitter:dossier_regulation-Appliquer la régularisation"
PREVIEW = "FormSubmitter:mass_regulation-Aperçu"


def open_devis(login: str, number: str) -> AppTest:
    at = log_in(login)
    at.session_state["open_dossier"] = number
    return at.switch_page("app_pages/dossier.py").run()


def dossier_row(db: sa.Engine, number: str) -> tuple[int, str]:
    with db.connect() as conn:
        version, total = conn.execute(
            sa.text("SELECT version, sale_total FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).one()
    return version, str(total)


def fill(at: AppTest, prefix: str, supplier: str, kinds: list[str], purchase: str, sale: str, reason: str) -> None:
    if prefix == SINGLE:
        at.selectbox(key=prefix + "supplier_code").set_value(supplier)
    else:
        at.text_input(key=prefix + "supplier_code").input(supplier)
    at.multiselect(key=prefix + "service_kinds").set_value(kinds)
    at.text_input(key=prefix + "purchase_value").input(purchase)
    at.text_input(key=prefix + "sale_value").input(sale)
    at.text_area(key=prefix + "reason").input(reason)


def test_a_single_regulation_from_the_devis_adds_its_line_and_empties_the_form(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None
) -> None:
    at = open_devis("alice", seeded["dupont"])
    fill(at, SINGLE, "HOTEL01", ["hotel"], "35.50", "40.00", "taxe de séjour relevée")
    at.button(key=SINGLE_SUBMIT).click().run()
    assert not at.exception and not at.error
    lines = at.tabs[0].dataframe[0].value
    added = lines[lines["Motif"] == "taxe de séjour relevée"]
    assert list(added["Origine"]) == ["régularisation"] and list(added["Créée par"]) == ["alice"]
    assert at.text_area(key=SINGLE + "reason").value == ""
    assert dossier_row(db, seeded["dupont"]) == (2, "2520.00")


def test_a_refused_single_regulation_names_the_field_and_keeps_what_was_typed(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None
) -> None:
    at = open_devis("alice", seeded["dupont"])
    fill(at, SINGLE, "AIR01", ["hotel"], "35.50", "0", "vol plus cher")
    at.button(key=SINGLE_SUBMIT).click().run()
    assert [e.value for e in at.error] == ["Code fournisseur: no confirmed service of this supplier and kind"]
    assert at.text_area(key=SINGLE + "reason").value == "vol plus cher"
    assert dossier_row(db, seeded["dupont"]) == (1, "2480.00")


def test_without_the_permission_the_single_form_is_hidden(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None
) -> None:
    # Every built-in role may regulate (accountants since 0017): an admin took the right away.
    f.user(db, "carla", "accountant")
    grant = {"r": "accountant", "p": "regulation"}
    with db.begin() as conn:
        conn.execute(sa.text("DELETE FROM app.role_permissions WHERE role = :r AND permission = :p"), grant)
    try:
        at = open_devis("carla", seeded["dupont"])
    finally:
        with db.begin() as conn:
            conn.execute(sa.text("INSERT INTO app.role_permissions (role, permission) VALUES (:r, :p)"), grant)
    assert not at.exception
    assert not [b for b in at.button if b.key == SINGLE_SUBMIT]


def open_regulations(login: str) -> AppTest:
    return log_in(login).switch_page("app_pages/regulations.py").run()


def senior(db: sa.Engine) -> str:
    return f.user(db, "sam", "senior_agent")


def test_mass_regulation_preview_apply_and_undo(db: sa.Engine, seeded: dict[str, str]) -> None:
    at = open_regulations(senior(db))
    assert not at.exception and at.title[0].value == "Régularisations fournisseurs"
    at.text_area(key="w_regulation_numbers").input(f"{seeded['dupont']}\n{seeded['martin']}\nBK-0000-404")
    fill(at, MASS, "HOTEL01", ["hotel"], "10.00", "12.00", "city tax raised")
    at.button(key=PREVIEW).click().run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Éligibles"], metrics["Introuvables"], metrics["Non éligibles"]) == ("2", "1", "0")
    assert (metrics["Variation de l'achat"], metrics["Variation de la vente"]) == ("20,00\xa0€", "24,00\xa0€")
    assert list(at.dataframe[0].value["Dossier"]) == ["BK-0000-404"]
    assert dossier_row(db, seeded["martin"]) == (1, "990.00")  # the preview wrote nothing

    at.button(key="w_regulation_apply").click().run()
    assert not at.exception and not at.error
    assert at.success[0].value == "Régularisation 1 appliquée à 2 dossiers."
    assert dossier_row(db, seeded["dupont"]) == (2, "2492.00")
    assert dossier_row(db, seeded["martin"]) == (2, "1012.00")
    history = at.dataframe[0].value
    assert list(history["Régularisation"]) == [1] and list(history["Dossiers"]) == [2]

    at.text_area(key="w_regulation_undo_reason").input("hotel withdrew it")
    at.button(key="FormSubmitter:regulation_undo-Annuler la régularisation").click().run()
    assert not at.exception and not at.error
    assert at.success[0].value == "Régularisation 1 annulée par la régularisation 2."
    assert dossier_row(db, seeded["martin"]) == (3, "1000.00")


def test_a_preview_made_stale_is_refused_and_must_be_redone(db: sa.Engine, seeded: dict[str, str]) -> None:
    at = open_regulations(senior(db))
    at.text_area(key="w_regulation_numbers").input(seeded["martin"])
    fill(at, MASS, "HOTEL01", ["hotel"], "10.00", "0", "city tax raised")
    at.button(key=PREVIEW).click().run()
    with db.begin() as conn:  # someone changes the dossier meanwhile
        conn.execute(
            sa.text("UPDATE app.dossiers SET version = version + 1 WHERE dossier_number = :n"), {"n": seeded["martin"]}
        )
    at.button(key="w_regulation_apply").click().run()
    assert "preview again" in at.error[0].value
    assert not [b for b in at.button if b.key == "w_regulation_apply"]
    assert dossier_row(db, seeded["martin"]) == (2, "990.00")


def test_an_agent_has_no_regulations_page_and_the_service_refuses_anyway(
    db: sa.Engine, seeded: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        open_regulations("alice")
    # Drawn anyway (the page run on its own), the preview is refused by the service.
    monkeypatch.syspath_prepend(str(APP))
    at = AppTest.from_file(str(APP / "app_pages" / "regulations.py"), default_timeout=20)
    with UnitOfWork(db) as uow:
        at.session_state["actor"] = load_actor(uow, "alice")
    at.session_state["locale"] = "fr"
    at.run()
    at.text_area(key="w_regulation_numbers").input(seeded["martin"])
    fill(at, MASS, "HOTEL01", ["hotel"], "10.00", "0", "taxe")
    at.button(key=PREVIEW).click().run()
    assert "needs the 'mass_regulation' permission" in at.error[0].value
    assert dossier_row(db, seeded["martin"]) == (1, "990.00")
