"""The Modifications tab: an agent records a request (the Devis waits), a senior agent validates or
refuses it; refusals show as the service words them; forms hidden without the right."""

from __future__ import annotations

import uuid

import factories as f
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest
from test_app import log_in, show_section

from backoffice.services.modifications import record_modification
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor

RECORD = "FormSubmitter:record_modification-Enregistrer la demande"
MODIFICATIONS_TAB = 5
NIGHT = {
    "service_id": "H1",
    "label": "Nuit supplémentaire",
    "quantity": 1,
    "unit_sale_amount": "120.00",
    "unit_purchase_amount": "90.00",
    "vat_rate": "0.10",
}


def open_dossier(login: str, number: str) -> AppTest:
    at = log_in(login)
    at.session_state["open_dossier"] = number
    at.session_state["open_section"] = "modifications"
    return at.switch_page("app_pages/dossier.py").run()


def edit(at: AppTest, key: str, *rows: dict[str, object]) -> None:
    """What the agent types in a line editor (AppTest seeds a data editor's edit state)."""
    at.session_state[key] = {"edited_rows": {}, "added_rows": list(rows), "deleted_rows": []}


def dossier(db: sa.Engine, number: str) -> tuple[int, str, int]:
    """(version, sale total, number of requests)."""
    with db.connect() as conn:
        version, total = conn.execute(
            sa.text("SELECT version, sale_total FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).one()
        requests = conn.execute(
            sa.text("SELECT count(*) FROM app.modification_requests WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()
    return version, str(total), requests


def senior(db: sa.Engine) -> str:
    """A French-speaking senior agent (the seeded one reads English)."""
    return f.user(db, "sophie", "senior_agent")


def pending_request(db: sa.Engine, number: str) -> int:
    with UnitOfWork(db) as uow:
        alice = load_actor(uow, "alice")
        return record_modification(
            uow,
            alice,
            dossier_number=number,
            kind="dates",
            description="Arrive one day later",
            lines_to_add=[NIGHT],
            expected_version=1,
            idempotency_key=uuid.uuid4().hex,
        )


def test_an_agent_records_a_request_it_waits_and_the_devis_does_not_change(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None
) -> None:
    number = seeded["dupont"]
    at = open_dossier("alice", number)
    with db.connect() as conn:
        transfer_line = conn.execute(
            sa.text("SELECT id FROM app.price_lines WHERE dossier_number = :n AND service_id = 'T1'"), {"n": number}
        ).scalar_one()
    at.selectbox(key="w_modification_kind").set_value("services")
    at.text_area(key="w_modification_description").input("Un jour de plus à l'hôtel, sans transfert")
    at.multiselect(key="w_modification_cancel").set_value([transfer_line])
    edit(at, "w_modification_add", NIGHT)
    at = at.button(key=RECORD).click().run()

    assert not at.exception and not at.error
    tab = at.tabs[MODIFICATIONS_TAB]
    assert tab.success[0].value == "Demande n°1 enregistrée : elle attend un agent senior."
    assert "Changement de prestations" in tab.markdown[0].value and "en attente" in tab.markdown[0].value
    lines = tab.dataframe[0].value
    assert list(lines["Action"]) == ["Ligne ajoutée", "Ligne annulée"]
    assert list(lines["Libellé"]) == ["Nuit supplémentaire", "Transfert privé"]
    assert dossier(db, number) == (1, "2480.00", 1)
    assert not [b for b in at.button if b.key and b.key.startswith("FormSubmitter:decide_modification")]
    assert at.text_area(key="w_modification_description").value == ""


def test_a_refused_request_names_the_field_and_keeps_what_was_typed(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None
) -> None:
    at = open_dossier("alice", seeded["dupont"])
    at.text_area(key="w_modification_description").input("Chambre supérieure")
    edit(at, "w_modification_add", {**NIGHT, "unit_sale_amount": "10.005"})
    at = at.button(key=RECORD).click().run()
    assert [e.value for e in at.error] == [
        "Lignes à ajouter: line 1, unit_sale_amount: '10.005' has more than 2 decimals"
    ]
    assert at.text_area(key="w_modification_description").value == "Chambre supérieure"
    assert dossier(db, seeded["dupont"]) == (1, "2480.00", 0)


def test_a_senior_agent_validates_and_the_devis_follows(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None
) -> None:
    number = seeded["dupont"]
    request_id = pending_request(db, number)
    at = open_dossier(senior(db), number)
    at = at.button(key=f"FormSubmitter:decide_modification_{request_id}-Valider la demande").click().run()

    assert not at.exception and not at.error
    tab = at.tabs[MODIFICATIONS_TAB]
    assert tab.success[0].value == f"Demande n°{request_id} validée."
    assert "validé" in tab.markdown[0].value
    assert any(caption.value.startswith("Validée par sophie le ") for caption in tab.caption)
    assert dossier(db, number) == (2, "2600.00", 1)
    devis = show_section(at, "devis").tabs[0].dataframe[0].value
    assert list(devis[devis["Origine"] == "modification"]["Libellé"]) == ["Nuit supplémentaire"]
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.outbox_mails")).scalar_one() >= 1


def test_refusing_needs_a_reason_then_shows_who_and_why(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None
) -> None:
    number = seeded["dupont"]
    request_id = pending_request(db, number)
    refuse = f"FormSubmitter:decide_modification_{request_id}-Refuser la demande"
    at = open_dossier(senior(db), number)
    at = at.button(key=refuse).click().run()
    assert [e.value for e in at.error] == ["Motif: is required"]
    at.text_input(key=f"w_decide_reason_{request_id}").input("Hôtel complet")
    at = at.button(key=refuse).click().run()
    assert not at.error
    refused = [c.value for c in at.tabs[MODIFICATIONS_TAB].caption if c.value.startswith("Refusée par sophie le ")]
    assert len(refused) == 1 and refused[0].endswith(": Hôtel complet")
    assert dossier(db, number) == (1, "2480.00", 1)


def test_a_cancellation_shows_the_refund_it_would_give(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None
) -> None:
    at = open_dossier("alice", seeded["dupont"])
    at.selectbox(key="w_modification_kind").set_value("cancellation")
    at.text_area(key="w_modification_description").input("Client malade")
    edit(
        at,
        "w_modification_fees",
        {"service_id": "H1", "label": "Frais hôtel", "unit_sale_amount": "200.00", "unit_purchase_amount": "150.00"},
    )
    at = at.button(key=RECORD).click().run()
    assert [e.value for e in at.error] == []
    tab = at.tabs[MODIFICATIONS_TAB]
    assert [i.value for i in tab.info] == ["Remboursement dû si validée maintenant : 300,00\u00a0€"]


def test_without_the_rights_the_forms_are_hidden(db: sa.Engine, seeded: dict[str, str], price_lines_mart: None) -> None:
    pending_request(db, seeded["dupont"])
    f.user(db, "carla", "accountant")
    at = open_dossier("carla", seeded["dupont"])
    assert not at.exception
    assert not [b for b in at.button if b.key and b.key.startswith("FormSubmitter:") and "modification" in b.key]
    assert "en attente" in at.tabs[MODIFICATIONS_TAB].markdown[0].value
