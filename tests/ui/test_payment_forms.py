"""The Payments tab's forms (manual payment, refund, approval) and the queue of payments without a
dossier, driven through AppTest against the real database."""

from __future__ import annotations

import factories as f
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest
from test_app import log_in

RECORD = "FormSubmitter:record_payment-Enregistrer le paiement"
REFUND = "FormSubmitter:request_refund-Rembourser"
PAYMENTS_TAB = 4


def open_dossier(login: str, number: str) -> AppTest:
    at = log_in(login)
    at.session_state["open_dossier"] = number
    at.session_state["open_section"] = "payments"
    return at.switch_page("app_pages/dossier.py").run()


def rows(db: sa.Engine, sql: str, **params: object) -> list[sa.Row]:
    with db.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def test_a_manual_payment_is_recorded_and_the_schedule_follows(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None
) -> None:
    at = open_dossier("alice", seeded["dupont"])
    schedule = at.tabs[PAYMENTS_TAB].dataframe[0].value
    assert list(schedule["État"]) == ["payé", "en retard"]
    at.selectbox(key="w_pay_method").set_value("gift_voucher")
    at.text_input(key="w_pay_amount").input("1980.00")
    at.text_input(key="w_pay_voucher").input("kdo-7788")
    at.button(key=RECORD).click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["Paiement enregistré."]
    assert list(at.tabs[PAYMENTS_TAB].dataframe[0].value["État"]) == ["payé", "payé"]
    assert at.text_input(key="w_pay_amount").value == ""
    assert rows(db, "SELECT method, amount, voucher_code, created_by FROM app.payments WHERE origin = 'manual'") == [
        ("gift_voucher", 1980, "KDO-7788", "alice")
    ]


def test_a_refused_payment_names_the_field_and_keeps_what_was_typed(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None
) -> None:
    at = open_dossier("alice", seeded["dupont"])
    at.selectbox(key="w_pay_method").set_value("gift_voucher")
    at.text_input(key="w_pay_amount").input("25.00")
    at.button(key=RECORD).click().run()
    assert [e.value for e in at.error] == ["Code du bon: is required"]
    assert at.text_input(key="w_pay_amount").value == "25.00"
    assert rows(db, "SELECT payment_id FROM app.payments WHERE origin = 'manual'") == []
    # An agent has no refund right: the refund form is not drawn.
    assert not [b for b in at.button if b.key == REFUND]


def test_a_large_refund_waits_for_a_second_person_who_approves_it(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None
) -> None:
    number = seeded["dupont"]
    big = f.payment(db, number, "1500.00", provider_reference="PSP-BIG")
    f.user(db, "sam", "senior_agent")
    at = open_dossier("sam", number)
    at.selectbox(key="w_refund_payment").set_value(big)
    at.text_input(key="w_refund_amount").input("1200.00")
    at.text_area(key="w_refund_reason").input("trip cancelled by the hotel")
    at.button(key=REFUND).click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["Remboursement en attente de l'approbation d'une autre personne."]
    assert [c.value for c in at.caption if "en attente" in c.value] == [
        "1\u202f200,00\xa0€ demandé par sam : en attente de l'approbation d'une autre personne."
    ]
    [pending] = rows(db, "SELECT id, state FROM app.refunds")
    assert pending.state == "pending_approval"
    f.user(db, "carla", "accountant")
    approver = open_dossier("carla", number)
    approver.text_input(key=f"w_refund_decision_{pending.id}").input("vu avec l'hôtel")
    approver.button(key=f"FormSubmitter:approve_refund_{pending.id}-Approuver").click().run()
    assert not approver.exception and not approver.error
    assert [s.value for s in approver.success] == ["Remboursement approuvé et exécuté."]
    assert rows(
        db, "SELECT amount, method, provider_reference, created_by FROM app.payments WHERE origin = 'refund'"
    ) == [(-1200, "card", "PSP-BIG", "carla")]


def test_a_refund_beyond_what_was_paid_is_refused_in_the_form(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None
) -> None:
    f.user(db, "sam", "senior_agent")
    at = open_dossier("sam", seeded["dupont"])
    at.text_input(key="w_refund_amount").input("500.01")
    at.text_area(key="w_refund_reason").input("goodwill")
    at.button(key=REFUND).click().run()
    assert [e.value.lower() for e in at.error] == ["montant: 500.01 is more than the 500.00 eur that can be refunded"]
    assert rows(db, "SELECT id FROM app.refunds") == []


def test_the_queue_assigns_a_transfer_after_checking_the_dossier(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None
) -> None:
    number = seeded["dupont"]
    f.payment(db, None, "120.00", payment_id="BANK-1", method="transfer", provider="bank", payer_name="DUPONT J")
    at = log_in("alice").switch_page("app_pages/unattributed.py").run()
    assert list(at.dataframe[0].value["Paiement"]) == ["BANK-1"]
    at.text_input(key="w_assign_dossier").input(number.lower())
    at.text_area(key="w_assign_reason").input("libellé du virement : DUPONT")
    at.button(key="FormSubmitter:find_assignment-Vérifier le dossier").click().run()
    assert not at.exception and not at.error
    assert [m.value for m in at.markdown if "DUPONT Jean" in m.value and "BANK-1" in m.value]
    at.button(key="w_assign_confirm").click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == [f"Paiement BANK-1 affecté au dossier {number}."]
    assert [c.value for c in at.caption] == ["Tous les paiements sont affectés à un dossier."]
    assert rows(db, "SELECT payment_id, dossier_number, attributed_by FROM app.payment_attributions") == [
        ("BANK-1", number, "alice")
    ]
