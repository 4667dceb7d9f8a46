"""The travel book in the Documents tab: the complete flag and the mode, "send now", the past sendings,
who/when beside each download; refusals shown as the service words them; read-only without the right."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest
from test_app import log_in

from backoffice.config import get_settings
from backoffice.services.documents import upload_document
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor

PDF = b"%PDF-1.7\n%%EOF\n"
SAVE = "FormSubmitter:travel_book-Enregistrer"
DOCUMENTS_TAB = 6


@pytest.fixture
def documents_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("BACKOFFICE_DOCUMENTS_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def with_ticket(db: sa.Engine, number: str) -> None:
    with UnitOfWork(db) as uow:
        alice = load_actor(uow, "alice")
        upload_document(uow, alice, number, "Billet", "ticket", "billet.pdf", PDF, idempotency_key=f"k-{number}")


def open_documents(login: str, number: str) -> AppTest:
    at = log_in(login)
    at.session_state["open_dossier"] = number
    at.session_state["open_section"] = "documents"
    return at.switch_page("app_pages/dossier.py").run()


def mails(db: sa.Engine) -> list[tuple[str, str, str]]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT kind, to_address, state FROM app.outbox_mails"))]


def client_email(db: sa.Engine, number: str) -> str:
    with db.connect() as conn:
        return conn.execute(
            sa.text("SELECT client_email FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()


def sendings_table(at: AppTest):
    return at.tabs[DOCUMENTS_TAB].dataframe[0].value


def test_marking_complete_queues_the_book_and_lists_the_sending(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None, documents_dir: Path
) -> None:
    number = seeded["dupont"]
    with_ticket(db, number)
    at = open_documents("alice", number)
    assert not at.exception
    uploaded = next(c.value for c in at.caption if c.value.startswith("billet.pdf, déposé le "))
    assert uploaded.endswith(" par alice")
    assert "Le carnet de voyage n'a pas encore été envoyé." in [c.value for c in at.caption]
    at.toggle(key="w_travel_book_complete").set_value(True)
    at.button(key=SAVE).click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["Carnet de voyage mis en file d'envoi pour le client."]
    table = sendings_table(at)
    assert list(table["Qui"]) == ["alice"] and list(table["Motif"]) == ["Marqué complet"]
    assert list(table["Versions"]) == ["Billet (version 1)"] and list(table["Mail"]) == ["en attente"]
    assert mails(db) == [("travel_book", client_email(db, number), "pending")]
    assert at.toggle(key="w_travel_book_complete").value is True
    assert not [b for b in at.button if b.key == "w_send_travel_book"]  # nothing new to send


def test_manual_mode_waits_for_send_now(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None, documents_dir: Path
) -> None:
    number = seeded["dupont"]
    with_ticket(db, number)
    at = open_documents("alice", number)
    at.radio(key="w_travel_book_mode").set_value("manual")
    at.toggle(key="w_travel_book_complete").set_value(True)
    at.button(key=SAVE).click().run()
    assert [s.value for s in at.success] == ["Carnet de voyage enregistré."]
    assert mails(db) == []
    at.button(key="w_send_travel_book").click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["Carnet de voyage mis en file d'envoi pour le client."]
    assert list(sendings_table(at)["Motif"]) == ["Envoyé par un agent"]
    assert [m[0] for m in mails(db)] == ["travel_book"]
    assert not [b for b in at.button if b.key == "w_send_travel_book"]


def test_refusals_are_shown_as_the_service_words_them(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None, documents_dir: Path
) -> None:
    number = seeded["dupont"]
    at = open_documents("alice", number)
    at.toggle(key="w_travel_book_complete").set_value(True)
    at.button(key=SAVE).click().run()
    assert [e.value for e in at.error] == ["Documents: the dossier has no travel documents yet"]
    assert at.toggle(key="w_travel_book_complete").value is True  # what was chosen is kept
    with_ticket(db, number)
    with db.begin() as conn:  # someone else changed the dossier meanwhile
        conn.execute(sa.text("UPDATE app.dossiers SET version = version + 1 WHERE dossier_number = :n"), {"n": number})
    at.button(key=SAVE).click().run()
    assert [e.value for e in at.error] == [
        f"dossier {number} was changed by someone else (your version 1, now 2); reload it and try again"
    ]
    assert mails(db) == []


def test_without_manage_documents_the_sendings_are_read_only(
    db: sa.Engine, seeded: dict[str, str], price_lines_mart: None, documents_dir: Path
) -> None:
    f.user(db, "carla", "accountant")
    at = open_documents("carla", seeded["dupont"])
    assert not at.exception
    assert not at.toggle and not [b for b in at.button if b.key in (SAVE, "w_send_travel_book")]
    assert "Le carnet de voyage n'a pas encore été envoyé." in [c.value for c in at.caption]
