"""The Payments tab's automatic charges and its "retry the charge now" button, through AppTest
against the real database and the simulator provider."""

from __future__ import annotations

from collections.abc import Iterator

import factories as f
import pytest
import sqlalchemy as sa
from test_payment_forms import PAYMENTS_TAB, open_dossier, rows

from backoffice.config import get_settings
from backoffice.domain.clock import accounting_today
from backoffice.providers import SimulatorProvider
from backoffice.services.balances import charge_due_balances

RETRY = "FormSubmitter:charge_now_2-Relancer le prélèvement maintenant"


@pytest.fixture
def no_random_declines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The app's provider (the simulator from the settings) declines only the amounts its rules name."""
    monkeypatch.setenv("BACKOFFICE_PROVIDER_DECLINE_RATE", "0")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_declined_balance_is_shown_and_charged_again_by_hand(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None, no_random_declines: None
) -> None:
    number = seeded["dupont"]  # balance 1980.00 by card on file, due yesterday
    assert charge_due_balances(db, accounting_today(), SimulatorProvider(db, decline_rate="1")).declined == 1
    at = open_dossier("alice", number)
    charges = at.tabs[PAYMENTS_TAB].dataframe[1].value
    assert list(charges["État"]) == ["refusé"]
    assert list(charges["Motif"]) == ["refusé par la banque"]
    assert list(charges["Par"]) == ["traitement quotidien"]
    at.button(key=RETRY).click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["Carte débitée : 1\u202f980,00\xa0€."]
    assert list(at.tabs[PAYMENTS_TAB].dataframe[0].value["État"]) == ["payé", "payé"]
    assert list(at.tabs[PAYMENTS_TAB].dataframe[1].value["État"]) == ["refusé", "encaissé"]
    assert not [b for b in at.button if b.key == RETRY]
    assert rows(db, "SELECT amount, origin, created_by FROM app.payments WHERE origin = 'automatic_charge'") == [
        (1980, "automatic_charge", "alice")
    ]


def test_a_retry_declined_again_says_so_and_the_client_is_mailed(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None, no_random_declines: None
) -> None:
    number = f.dossier(db, schedule=[{"due_date": accounting_today(), "amount": "450.13", "kind": "balance"}])
    charge_due_balances(db, accounting_today(), SimulatorProvider(db))  # .13: insufficient funds, always
    at = open_dossier("alice", number)
    assert [m.value for m in at.markdown if "450,13" in m.value] == [
        "Le prélèvement de 450,13\xa0€ sur la carte a été refusé."
    ]
    at.button(key=RETRY.replace("charge_now_2", "charge_now_1")).click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == [
        "La carte a de nouveau été refusée (provision insuffisante) ; le client a été prévenu par mail."
    ]
    assert list(at.tabs[PAYMENTS_TAB].dataframe[1].value["Par"]) == ["traitement quotidien", "alice"]
    assert rows(db, "SELECT count(*) FROM app.outbox_mails WHERE kind = 'balance_charge_failed'") == [(2,)]
