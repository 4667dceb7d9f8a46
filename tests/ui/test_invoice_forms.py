"""The Client invoices tab: issue from the Devis, cancel with a credit note, refusals shown, hidden
without the right."""

from __future__ import annotations

import factories as f
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest
from test_app import log_in

ISSUE = "FormSubmitter:issue_invoice-Émettre"
CREDIT = "FormSubmitter:issue_credit_note-Émettre l'avoir"
TAB = 7  # Devis, Client, Travellers, Services, Payments, Modifications, Documents, Client invoices


def open_invoices(login: str, number: str) -> AppTest:
    at = log_in(login)
    at.session_state["open_dossier"] = number
    at.session_state["open_section"] = "invoices"
    return at.switch_page("app_pages/dossier.py").run()


def test_issue_then_cancel_with_a_credit_note(db: sa.Engine, seeded: dict[str, str], price_lines_mart: None) -> None:
    f.invoice_seller(db)
    f.user(db, "carla", "accountant")
    at = open_invoices("carla", seeded["dupont"])
    tab = at.tabs[TAB]
    assert not at.exception
    assert "facture de 2 480,00" in " ".join(m.value for m in tab.markdown).replace("\u202f", " ").replace("\xa0", " ")
    at = at.button(key=ISSUE).click().run()
    assert not at.exception and not at.error
    [flash] = at.success
    assert flash.value.endswith("émis(e) et envoyé(e) au client.")
    table = at.tabs[TAB].dataframe[0].value
    assert list(table["Type"]) == ["facture"]
    assert "Tout le devis est déjà facturé." in [c.value for c in at.tabs[TAB].caption]
    # The credit note without a reason is refused, naming the field; with one it is issued.
    at = at.button(key=CREDIT).click().run()
    assert [e.value for e in at.error] == ["Motif: is required for a credit note"]
    at.text_area(key="w_credit_reason").input("voyage annulé")
    at = at.button(key=CREDIT).click().run()
    assert not at.exception and not at.error
    table = at.tabs[TAB].dataframe[0].value
    assert list(table["Type"]) == ["facture", "avoir"]
    assert list(table["Motif"]) == ["", "voyage annulé"]
    with db.connect() as conn:
        kinds = conn.execute(sa.text("SELECT kind FROM app.client_invoices ORDER BY seq, kind")).scalars().all()
    assert sorted(kinds) == ["credit_note", "invoice"]


def test_without_the_permission_the_forms_are_hidden(seeded: dict[str, str], price_lines_mart: None) -> None:
    at = open_invoices("alice", seeded["dupont"])
    assert not at.exception
    assert not [b for b in at.button if b.key in (ISSUE, CREDIT)]
    assert "Aucune facture client." in [c.value for c in at.tabs[TAB].caption]
