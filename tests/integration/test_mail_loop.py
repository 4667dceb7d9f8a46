"""The app's delivery loop against a real SMTP server (aiosmtpd) and a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from test_mail_outbox import Server, queue

from backoffice.config import Settings, get_settings
from backoffice.mail import loop
from backoffice.mail.sender import deliver_due


@pytest.fixture
def smtp() -> Iterator[Server]:
    server = Server()
    server.start()
    yield server
    server.stop()


def settings_for(server: Server) -> Settings:
    return get_settings().model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": server.port})


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def start(engine: Engine, settings: Settings) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=loop.run_forever, args=(engine, settings, stop), kwargs={"interval": 0.1})
    thread.start()
    return thread, stop


def stop_and_join(thread: threading.Thread, stop: threading.Event) -> None:
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive(), "the loop did not exit when told to stop"


def test_the_loop_delivers_a_queued_mail_once_and_stops_when_told(db: Engine, smtp: Server) -> None:
    mail_id = queue(db)
    thread, stop = start(db, settings_for(smtp))
    try:
        assert wait_for(lambda: len(smtp.inbox.messages) == 1)
        time.sleep(0.5)  # several more rounds: none may send it again
    finally:
        stop_and_join(thread, stop)
    assert len(smtp.inbox.messages) == 1
    with db.connect() as conn:
        state = conn.execute(sa.text("SELECT state FROM app.outbox_mails WHERE id = :id"), {"id": mail_id}).scalar()
    assert state == "sent"


def test_the_loop_survives_a_failed_round(db: Engine, smtp: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:
            raise sa.exc.OperationalError("SELECT", {}, Exception("database went away"))
        return deliver_due(*args, **kwargs)

    monkeypatch.setattr(loop, "deliver_due", flaky)
    queue(db)
    thread, stop = start(db, settings_for(smtp))
    try:
        assert wait_for(lambda: len(smtp.inbox.messages) == 1)
    finally:
        stop_and_join(thread, stop)
    assert len(calls) >= 2


def test_without_an_smtp_host_the_loop_sends_nothing(db: Engine, smtp: Server) -> None:
    queue(db)
    thread, stop = start(db, get_settings().model_copy(update={"smtp_host": None}))
    time.sleep(0.3)
    stop_and_join(thread, stop)
    assert smtp.inbox.messages == []
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT state FROM app.outbox_mails")).scalar() == "pending"
