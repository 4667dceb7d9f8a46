"""The Outbox page through AppTest: the list, "send now" against a real SMTP server, the right."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from streamlit.testing.v1 import AppTest

from backoffice.config import get_settings
from backoffice.domain.permissions import Actor
from backoffice.mail.outbox import enqueue

APP = Path(__file__).resolve().parents[2] / "apps" / "streamlit"
PAGE = str(APP / "app_pages" / "outbox.py")
SENIOR = Actor("bob", "senior_agent", frozenset({"search_dossiers", "view_outbox"}), locale="fr")


class Inbox:
    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from email import message_from_bytes, policy

        self.subjects.append(message_from_bytes(envelope.original_content, policy=policy.default)["Subject"])
        return "250 OK"


@pytest.fixture
def page(db: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    """A queued mail; the page's `ui` package importable; settings re-read after the test."""
    monkeypatch.syspath_prepend(str(APP))
    monkeypatch.delenv("BACKOFFICE_SMTP_HOST", raising=False)
    get_settings.cache_clear()
    with db.begin() as conn:
        enqueue(
            conn,
            kind="balance_charge_failed",
            language="en",
            to_address="jane.doe@example.org",
            context={"client_name": "Jane Doe", "dossier_number": "D-9", "amount": "€1,980.00", "due_date": "today"},
            dossier_number="D-9",
            actor="system",
        )
    yield db
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def smtp_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("BACKOFFICE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("BACKOFFICE_SMTP_PORT", str(port))
    get_settings.cache_clear()
    yield inbox
    controller.stop()


def open_page(actor: Actor) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=20)
    at.session_state["actor"] = actor
    at.session_state["locale"] = actor.locale
    return at.run()


def test_without_smtp_mails_wait_in_the_outbox(page: sa.Engine) -> None:
    at = open_page(SENIOR)
    assert not at.exception and not at.error
    assert at.title[0].value == "Courriels sortants"
    assert at.info[0].value.startswith("Aucun serveur SMTP n'est configuré")
    assert not at.button, "no send button without an SMTP server"
    table = at.dataframe[0].value
    assert list(table["État"]) == ["en attente"]
    assert list(table["Objet"]) == ["Balance payment declined (booking D-9)"]
    assert list(table["Type"]) == ["Échec du prélèvement du solde"]
    assert list(table["Dossier"]) == ["D-9"]


def test_send_now_delivers_and_shows_the_result(page: sa.Engine, smtp_server: Inbox) -> None:
    at = open_page(SENIOR)
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert at.success[0].value == "1 envoyé(s), 0 à réessayer, 0 en échec"
    assert list(at.dataframe[0].value["État"]) == ["envoyé"]
    assert smtp_server.subjects == ["Balance payment declined (booking D-9)"]
    at.selectbox[0].select("pending").run()
    assert at.dataframe[0].value.empty


def test_an_agent_without_the_right_is_refused(page: sa.Engine) -> None:
    at = open_page(Actor("alice", "agent", frozenset({"search_dossiers"}), locale="en"))
    assert not at.exception
    assert "needs the 'view_outbox' permission" in at.error[0].value
    assert not at.dataframe
