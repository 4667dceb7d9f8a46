"""The mail outbox against a real SMTP server (aiosmtpd) and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlalchemy.engine import Engine

from backoffice.domain.errors import InvalidInput, PermissionDenied
from backoffice.domain.permissions import Actor
from backoffice.mail.outbox import enqueue, list_mails
from backoffice.mail.sender import deliver_due, deliver_now
from backoffice.services.unit_of_work import UnitOfWork

# Senders are told the time; a day ahead, so every mail the tests queue is already due.
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
CANCELLATION = {"client_name": "Jean Dupont", "fees": "150,00 €", "refund": "2 330,00 €"}


class Inbox:
    """An aiosmtpd handler keeping what it received; `refuse` answers RCPT for an address."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: dict[str, str] = {}
        self.delay = 0.0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp() -> Iterator[Server]:
    """A free localhost port; the test starts the server on it (or leaves it down)."""
    server = Server()
    yield server
    server.stop()


def queue(engine: Engine, to: str = "jean.dupont@example.org", language: str = "fr", dossier: str = "D-1") -> int:
    with engine.begin() as conn:
        return enqueue(
            conn,
            kind="cancellation_confirmed",
            language=language,
            to_address=to,
            context={**CANCELLATION, "dossier_number": dossier},
            dossier_number=dossier,
            actor="alice",
        )


def mail(engine: Engine, mail_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM app.outbox_mails WHERE id = :id"), {"id": mail_id}).one()


def deliver(engine: Engine, server: Server, now: datetime = T0, **kwargs: Any) -> Any:
    return deliver_due(engine, "127.0.0.1", server.port, now=now, **kwargs)


def test_a_rolled_back_action_leaves_no_mail(db: Engine) -> None:
    with db.connect() as conn, conn.begin() as transaction:
        enqueue(
            conn,
            kind="cancellation_confirmed",
            language="fr",
            to_address="jean.dupont@example.org",
            context={**CANCELLATION, "dossier_number": "D-1"},
            dossier_number="D-1",
            actor="alice",
        )
        transaction.rollback()
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.outbox_mails")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM audit.events")).scalar() == 0


def test_committed_mail_is_received_once_in_the_clients_language(db: Engine, smtp: Server) -> None:
    smtp.start()
    english = queue(db, to="jane.doe@example.org", language="en", dossier="D-2")
    unknown_language = queue(db, to="hans@example.org", language="de", dossier="D-3")
    report = deliver(db, smtp)
    assert (report.sent, report.deferred, report.failed) == (2, 0, 0)
    assert deliver(db, smtp).sent == 0  # nothing left to send
    received = {m["To"]: m for m in smtp.inbox.messages}
    assert len(smtp.inbox.messages) == 2
    jane = received["jane.doe@example.org"]
    assert jane["Subject"] == "Cancellation of your booking D-2"
    body = jane.get_body(("plain",)).get_content()
    assert "Dear Jean Dupont," in body and "Cancellation fees: 150,00 €." in body
    assert jane["Message-ID"] == mail(db, english).message_id
    hans = received["hans@example.org"]  # no German templates: French
    assert hans["Subject"] == "Annulation de votre dossier D-3"
    assert "Montant qui vous sera remboursé : 2 330,00 €." in hans.get_body(("plain",)).get_content()
    row = mail(db, unknown_language)
    assert (row.state, row.attempts, row.language, row.sent_at) == ("sent", 1, "fr", T0)


def test_html_part_is_escaped(db: Engine, smtp: Server) -> None:
    smtp.start()
    with db.begin() as conn:
        enqueue(
            conn,
            kind="travel_book",
            language="en",
            to_address="jane.doe@example.org",
            context={
                "client_name": "Jane <script>",
                "dossier_number": "D-4",
                "destination": "Rome",
                "departure_date": "3 May 2027",
                "documents": ["Flight tickets", "Hotel voucher"],
            },
            dossier_number="D-4",
            actor="bob",
        )
    deliver(db, smtp)
    (received,) = smtp.inbox.messages
    assert "Dear Jane <script>," in received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    assert "Jane &lt;script&gt;" in html and "<li>Hotel voucher</li>" in html


def test_smtp_down_then_up_retries_with_backoff_and_sends_once(db: Engine, smtp: Server) -> None:
    mail_id = queue(db)
    report = deliver(db, smtp, now=T0)
    assert (report.sent, report.deferred) == (0, 1)
    row = mail(db, mail_id)
    assert (row.state, row.attempts, row.next_attempt_at) == ("pending", 1, T0 + timedelta(minutes=1))
    assert "ConnectionRefusedError" in row.last_error
    assert deliver(db, smtp, now=T0 + timedelta(seconds=30)).deferred == 0  # not due yet
    deliver(db, smtp, now=T0 + timedelta(minutes=1))
    row = mail(db, mail_id)
    assert (row.attempts, row.next_attempt_at) == (2, T0 + timedelta(minutes=3))
    smtp.start()
    later = T0 + timedelta(minutes=3)
    assert deliver(db, smtp, now=later).sent == 1
    assert deliver(db, smtp, now=later + timedelta(hours=2)).sent == 0
    assert len(smtp.inbox.messages) == 1
    row = mail(db, mail_id)
    assert (row.state, row.attempts, row.last_error, row.sent_at) == ("sent", 3, None, later)


def test_permanent_refusal_marks_failed_and_others_still_go(db: Engine, smtp: Server) -> None:
    smtp.inbox.refuse["nobody@example.org"] = "550 5.1.1 No such user"
    smtp.start()
    refused = queue(db, to="nobody@example.org")
    fine = queue(db, to="jean.dupont@example.org")
    report = deliver(db, smtp)
    assert (report.sent, report.deferred, report.failed) == (1, 0, 1)
    row = mail(db, refused)
    assert (row.state, row.attempts) == ("failed", 1)
    assert "550" in row.last_error and "No such user" in row.last_error
    assert mail(db, fine).state == "sent"
    assert [m["To"] for m in smtp.inbox.messages] == ["jean.dupont@example.org"]
    assert deliver(db, smtp, now=T0 + timedelta(days=1)).failed == 0  # a failed mail is not retried


def test_temporary_refusal_retries_until_max_attempts(db: Engine, smtp: Server) -> None:
    smtp.inbox.refuse["full@example.org"] = "452 4.2.2 Mailbox full"
    smtp.start()
    mail_id = queue(db, to="full@example.org")
    assert deliver(db, smtp, max_attempts=2).deferred == 1
    row = mail(db, mail_id)
    assert (row.state, row.attempts) == ("pending", 1) and "452" in row.last_error
    assert deliver(db, smtp, now=T0 + timedelta(minutes=1), max_attempts=2).failed == 1
    assert mail(db, mail_id).state == "failed"
    assert smtp.inbox.messages == []


def test_backoff_doubles_up_to_an_hour() -> None:
    from backoffice.mail.sender import backoff

    assert [backoff(n) for n in (1, 2, 3, 7, 8, 20)] == [
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
        timedelta(minutes=60),
        timedelta(hours=1),
        timedelta(hours=1),
    ]


def test_two_concurrent_senders_deliver_each_mail_once(db: Engine, smtp: Server) -> None:
    smtp.inbox.delay = 0.01  # keeps both senders busy at the same time
    smtp.start()
    ids = [queue(db, to=f"client{i}@example.org", dossier=f"D-{i}") for i in range(30)]
    reports: list[Any] = []
    threads = [threading.Thread(target=lambda: reports.append(deliver(db, smtp))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.sent for r in reports) == 30
    assert all(r.sent > 0 for r in reports), "both senders took part"
    message_ids = [m["Message-ID"] for m in smtp.inbox.messages]
    assert len(message_ids) == 30 and len(set(message_ids)) == 30
    assert {mail(db, i).state for i in ids} == {"sent"}


@pytest.mark.parametrize(
    "address", ["", "jean.dupont", "jean@example", "a b@example.org", "x@example.org\nBcc: y@z.org"]
)
def test_bad_address_is_refused_naming_the_field(db: Engine, address: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        queue(db, to=address)
    assert refused.value.field == "to_address"
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.outbox_mails")).scalar() == 0


def test_missing_context_or_unknown_kind_is_refused(db: Engine) -> None:
    with db.begin() as conn, pytest.raises(InvalidInput) as refused:
        enqueue(
            conn,
            kind="cancellation_confirmed",
            language="en",
            to_address="jane@example.org",
            context={"client_name": "Jane"},
            dossier_number=None,
            actor="bob",
        )
    assert refused.value.field == "context"
    with db.begin() as conn, pytest.raises(InvalidInput) as refused:
        enqueue(
            conn,
            kind="spam",
            language="en",
            to_address="jane@example.org",
            context={},
            dossier_number=None,
            actor="bob",
        )
    assert refused.value.field == "kind"


def test_without_smtp_nothing_is_sent_and_mails_stay_pending(db: Engine) -> None:
    mail_id = queue(db)
    assert vars(deliver_due(db, None, 25)) == {"sent": 0, "deferred": 0, "failed": 0}
    assert (mail(db, mail_id).state, mail(db, mail_id).attempts) == ("pending", 0)


def test_mails_are_never_deleted(db: Engine) -> None:
    mail_id = queue(db)
    with pytest.raises(sa.exc.DBAPIError, match="refused"), db.begin() as conn:
        conn.execute(sa.text("DELETE FROM app.outbox_mails WHERE id = :id"), {"id": mail_id})


def test_outbox_listing_and_send_now_need_view_outbox(db: Engine, smtp: Server) -> None:
    smtp.start()
    queue(db)
    agent = Actor("alice", "agent", frozenset({"search_dossiers"}))
    senior = Actor("bob", "senior_agent", frozenset({"view_outbox"}))
    with UnitOfWork(db) as uow, pytest.raises(PermissionDenied):
        list_mails(uow, agent)
    with pytest.raises(PermissionDenied):
        deliver_now(db, agent, "127.0.0.1", smtp.port)
    with UnitOfWork(db) as uow:
        assert [m.state for m in list_mails(uow, senior)] == ["pending"]
    with pytest.raises(InvalidInput) as refused:
        deliver_now(db, senior, None, 25)
    assert refused.value.field == "smtp_host"
    assert deliver_now(db, senior, "127.0.0.1", smtp.port).sent == 1
    with UnitOfWork(db) as uow:
        assert [m.state for m in list_mails(uow, senior, state="sent")] == ["sent"]
    with db.connect() as conn:
        outcomes = conn.execute(
            sa.text("SELECT actor, action, outcome FROM audit.events WHERE action <> 'enqueue_mail' ORDER BY id")
        ).all()
    assert [tuple(o) for o in outcomes] == [
        ("alice", "list_outbox", "refused"),
        ("alice", "send_outbox", "refused"),
        ("system", "send_mail", "done"),
        ("bob", "send_outbox", "done"),
    ]


def test_roles_granted_view_outbox(db: Engine) -> None:
    with db.connect() as conn:
        roles = conn.execute(
            sa.text("SELECT role FROM app.role_permissions WHERE permission = 'view_outbox' ORDER BY role")
        ).scalars()
        assert list(roles) == ["accountant", "admin", "senior_agent"]
