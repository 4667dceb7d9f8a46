"""The travel book: complete flag, automatic and manual sending, re-sending after a new version,
rights, stale versions, idempotency; mails checked as a real SMTP server (aiosmtpd) receives them."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import factories as f
import pytest
import sqlalchemy as sa
from test_mail_outbox import Server

from backoffice.documents.storage import LocalStorage
from backoffice.domain.errors import IdempotencyConflict, InvalidInput, PermissionDenied, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.mail import outbox
from backoffice.mail.sender import deliver_due
from backoffice.services.documents import DocumentVersion, replace_document, upload_document
from backoffice.services.travel_book import (
    AlreadySent,
    Change,
    list_sendings,
    send_travel_book,
    set_travel_book,
)
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor

PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
PDF_2 = b"%PDF-1.7\n% the corrected ticket\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
LATER = datetime.now(UTC) + timedelta(days=1)  # every queued mail is due


def actor(engine: sa.Engine, login: str, role: str = "agent") -> Actor:
    f.user(engine, login, role)
    with UnitOfWork(engine) as uow:
        return load_actor(uow, login)


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "documents")


@pytest.fixture
def smtp() -> Iterator[Server]:
    server = Server()
    server.start()
    yield server
    server.stop()


def upload(
    db: sa.Engine, who: Actor, number: str, storage: LocalStorage, filename: str, data: bytes, title: str = ""
) -> DocumentVersion:
    with UnitOfWork(db) as uow:
        return upload_document(
            uow, who, number, title or filename, "ticket", filename, data, idempotency_key=key(), storage=storage
        )


def replace(
    db: sa.Engine, who: Actor, current: DocumentVersion, filename: str, data: bytes, storage: LocalStorage, **kw: Any
) -> DocumentVersion:
    with UnitOfWork(db) as uow:
        return replace_document(
            uow,
            who,
            current.document_id,
            filename,
            data,
            expected_version=current.version,
            idempotency_key=kw.get("idempotency_key") or key(),
            storage=storage,
        )


def version(db: sa.Engine, number: str) -> int:
    with db.connect() as conn:
        return conn.execute(
            sa.text("SELECT version FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()


def mark(
    db: sa.Engine,
    who: Actor,
    number: str,
    storage: LocalStorage,
    complete: bool = True,
    mode: str = "automatic",
    **kw: Any,
) -> Change:
    with UnitOfWork(db) as uow:
        return set_travel_book(
            uow,
            who,
            dossier_number=number,
            complete=complete,
            mode=mode,
            expected_version=kw.get("expected_version") or version(db, number),
            idempotency_key=kw.get("idempotency_key") or key(),
            storage=storage,
        )


def send_now(db: sa.Engine, who: Actor, number: str, storage: LocalStorage, idempotency_key: str = "") -> int:
    with UnitOfWork(db) as uow:
        return send_travel_book(
            uow, who, dossier_number=number, idempotency_key=idempotency_key or key(), storage=storage
        )


def sendings(db: sa.Engine, number: str) -> list[Any]:
    with db.connect() as conn:
        return list_sendings(conn, number)


def received(db: sa.Engine, server: Server) -> list[EmailMessage]:
    deliver_due(db, "127.0.0.1", server.port, now=LATER)
    return server.inbox.messages


def attachments(message: EmailMessage) -> list[tuple[str, str, bytes]]:
    return [(a.get_filename(), a.get_content_type(), a.get_content()) for a in message.iter_attachments()]


def events(db: sa.Engine, action: str) -> list[Any]:
    with db.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT actor, outcome, dossier_number, before, after, detail FROM audit.events "
                    "WHERE action = :a ORDER BY id"
                ),
                {"a": action},
            )
        )


def test_marking_complete_mails_the_book_with_its_documents_in_the_clients_language(
    db: sa.Engine, storage: LocalStorage, smtp: Server
) -> None:
    alice = actor(db, "alice")
    english = f.dossier(
        db,
        client_first_name="Jane",
        client_last_name="Doe",
        client_email="jane@example.org",
        client_language="en",
        destination="Rome",
        departure_date=date(2031, 5, 3),
    )
    french = f.dossier(db, client_first_name="Jean", client_last_name="Dupont", client_email="jean@example.org")
    upload(db, alice, english, storage, "ticket.pdf", PDF, title="Flight tickets")
    upload(db, alice, english, storage, "voucher.png", PNG)
    upload(db, alice, french, storage, "billet.pdf", PDF_2, title="Billets")
    assert sendings(db, english) == []  # an upload alone sends nothing: the book is not complete

    before = version(db, english)
    change = mark(db, alice, english, storage)
    assert change.version == before + 1 and change.sending_id is not None
    mark(db, alice, french, storage)

    messages = {m["To"]: m for m in received(db, smtp)}
    assert len(smtp.inbox.messages) == 2
    jane = messages["jane@example.org"]
    assert jane["Subject"] == f"Your travel book for Rome (booking {english})"
    assert jane["Content-Language"] == "en"
    text = jane.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Dear Jane Doe," in text and "departing on 3 May 2031" in text
    assert "Your documents are attached to this e-mail:" in text
    assert "- Flight tickets (ticket.pdf)\n- voucher.png\n" in text
    assert attachments(jane) == [("ticket.pdf", "application/pdf", PDF), ("voucher.png", "image/png", PNG)]
    jean = messages["jean@example.org"]
    assert jean["Subject"] == f"Votre carnet de voyage pour Lisbonne (dossier {french})"
    assert "Vos documents sont joints à ce message :" in jean.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert attachments(jean) == [("billet.pdf", "application/pdf", PDF_2)]

    [sending] = sendings(db, english)
    assert (sending.id, sending.sent_by, sending.reason, sending.attached) == (
        change.sending_id,
        "alice",
        "completed",
        True,
    )
    assert (sending.mail_state, sending.to_address) == ("sent", "jane@example.org")
    assert [(d.title, d.version, d.filename) for d in sending.documents] == [
        ("Flight tickets", 1, "ticket.pdf"),
        ("voucher.png", 1, "voucher.png"),
    ]
    [audited] = [e for e in events(db, "set_travel_book") if e.dossier_number == english]
    assert audited.before == {"version": before, "complete": False, "mode": "automatic"}
    assert audited.after == {"version": before + 1, "complete": True, "mode": "automatic", "sending_id": sending.id}
    assert [e.after["reason"] for e in events(db, "send_travel_book")] == ["completed", "completed"]


def test_a_new_version_after_sending_resends_the_updated_book_exactly_once(
    db: sa.Engine, storage: LocalStorage, smtp: Server
) -> None:
    alice, sam = actor(db, "alice"), actor(db, "sam", "senior_agent")
    number = f.dossier(db, client_email="paul@example.org")
    ticket = upload(db, alice, number, storage, "billet.pdf", PDF)
    voucher = upload(db, alice, number, storage, "voucher.png", PNG)
    mark(db, alice, number, storage)
    same_key = key()
    corrected = replace(db, sam, ticket, "billet-v2.pdf", PDF_2, storage, idempotency_key=same_key)
    assert replace(db, sam, ticket, "billet-v2.pdf", PDF_2, storage, idempotency_key=same_key) == corrected
    # Unmarking then marking again finds this set already sent: nothing new leaves.
    mark(db, alice, number, storage, complete=False)
    assert mark(db, alice, number, storage).sending_id is None

    latest, first = sendings(db, number)
    assert (latest.reason, latest.sent_by) == ("new_version", "sam")
    assert latest.version_ids == tuple(sorted((corrected.id, voucher.id)))
    assert first.version_ids == tuple(sorted((ticket.id, voucher.id)))
    messages = received(db, smtp)
    assert len(messages) == 2
    updated = messages[-1]
    assert updated["Subject"] == f"Votre carnet de voyage mis à jour pour Lisbonne (dossier {number})"
    assert "a changé : le voici à jour" in updated.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert attachments(updated) == [("billet-v2.pdf", "application/pdf", PDF_2), ("voucher.png", "image/png", PNG)]


def test_manual_mode_sends_only_when_asked_and_never_the_same_versions_twice(
    db: sa.Engine, storage: LocalStorage, smtp: Server
) -> None:
    alice = actor(db, "alice")
    number = f.dossier(db)
    upload(db, alice, number, storage, "billet.pdf", PDF)
    assert mark(db, alice, number, storage, mode="manual").sending_id is None
    assert received(db, smtp) == []
    first = send_now(db, alice, number, storage)
    with pytest.raises(AlreadySent, match="already sent to the client on"):
        send_now(db, alice, number, storage)
    upload(db, alice, number, storage, "voucher.png", PNG)  # manual: the new document waits
    assert [s.id for s in sendings(db, number)] == [first]
    second = send_now(db, alice, number, storage)
    assert [(s.id, s.reason) for s in sendings(db, number)] == [(second, "manual"), (first, "manual")]
    assert [len(attachments(m)) for m in received(db, smtp)] == [1, 2]
    assert [e.outcome for e in events(db, "send_travel_book")] == ["done", "refused", "done"]
    # Switching to automatic sends nothing more: the current versions already left.
    assert mark(db, alice, number, storage, mode="automatic").sending_id is None


def test_refusals_by_role_and_bad_input_are_audited_and_change_nothing(db: sa.Engine, storage: LocalStorage) -> None:
    alice, carla = actor(db, "alice"), actor(db, "carla", "accountant")
    number = f.dossier(db)
    with pytest.raises(InvalidInput) as refused:
        mark(db, alice, number, storage)
    assert (refused.value.field, refused.value.problem) == ("documents", "the dossier has no travel documents yet")
    upload(db, alice, number, storage, "billet.pdf", PDF)
    with pytest.raises(PermissionDenied, match="manage_documents"):
        mark(db, carla, number, storage)
    with pytest.raises(PermissionDenied, match="manage_documents"):
        send_now(db, carla, number, storage)
    with pytest.raises(InvalidInput) as refused:
        mark(db, alice, number, storage, mode="fax")
    assert refused.value.field == "travel_book_mode"
    with pytest.raises(InvalidInput) as refused:
        send_now(db, alice, number, storage)
    assert refused.value.field == "travel_book_complete"
    assert [(e.actor, e.outcome) for e in events(db, "set_travel_book")] == [
        ("alice", "refused"),
        ("carla", "refused"),
        ("alice", "refused"),
    ]
    assert [(e.actor, e.outcome) for e in events(db, "send_travel_book")] == [
        ("carla", "refused"),
        ("alice", "refused"),
    ]
    assert version(db, number) == 1 and sendings(db, number) == []


def test_a_client_without_email_refuses_the_whole_action_naming_the_field(db: sa.Engine, storage: LocalStorage) -> None:
    alice = actor(db, "alice")
    number = f.dossier(db, client_email=None)
    upload(db, alice, number, storage, "billet.pdf", PDF)
    with pytest.raises(InvalidInput) as refused:
        mark(db, alice, number, storage)
    assert refused.value.field == "client_email"
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT travel_book_complete FROM app.dossiers")).scalar_one() is False
        assert conn.execute(sa.text("SELECT count(*) FROM app.outbox_mails")).scalar_one() == 0
    assert version(db, number) == 1


def test_stale_version_is_refused_and_same_key_replays_the_first_result(db: sa.Engine, storage: LocalStorage) -> None:
    alice, sam = actor(db, "alice"), actor(db, "sam", "senior_agent")
    number = f.dossier(db)
    upload(db, alice, number, storage, "billet.pdf", PDF)
    same = key()
    first = mark(db, alice, number, storage, mode="manual", idempotency_key=same, expected_version=1)
    assert mark(db, alice, number, storage, mode="manual", idempotency_key=same, expected_version=1) == first
    with pytest.raises(IdempotencyConflict):
        mark(db, alice, number, storage, mode="automatic", idempotency_key=same, expected_version=1)
    with pytest.raises(StaleVersion, match="your version 1, now 2"):
        mark(db, sam, number, storage, complete=False, expected_version=1)
    assert [e.outcome for e in events(db, "set_travel_book")] == ["done", "refused"]
    sent_key = key()
    sending = send_now(db, alice, number, storage, idempotency_key=sent_key)
    assert send_now(db, alice, number, storage, idempotency_key=sent_key) == sending
    assert version(db, number) == 2 and len(sendings(db, number)) == 1


def test_over_the_size_limit_the_mail_lists_the_documents_instead(
    db: sa.Engine, storage: LocalStorage, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "MAX_ATTACHMENTS_BYTES", len(PDF) + len(PNG) - 1)
    alice = actor(db, "alice")
    number = f.dossier(db, client_language="en")
    upload(db, alice, number, storage, "ticket.pdf", PDF)
    upload(db, alice, number, storage, "voucher.png", PNG)
    mark(db, alice, number, storage)
    [message] = received(db, smtp)
    assert attachments(message) == []
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "too large together to be attached" in text and "- ticket.pdf\n- voucher.png\n" in text
    assert [s.attached for s in sendings(db, number)] == [False]


def test_concurrent_uploads_end_with_the_full_set_sent(db: sa.Engine, storage: LocalStorage) -> None:
    alice = actor(db, "alice")
    number = f.dossier(db)
    upload(db, alice, number, storage, "billet.pdf", PDF)
    mark(db, alice, number, storage)
    errors: list[BaseException] = []

    def add(name: str, data: bytes) -> None:
        try:
            upload(db, alice, number, storage, name, data)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(f"v{i}.png", PNG + bytes([i]))) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.connect() as conn:
        current = set(conn.execute(sa.text("SELECT id FROM app.document_versions")).scalars())
    history = sendings(db, number)
    assert len(history) == 5 and set(history[0].version_ids) == current
    assert len({s.version_ids for s in history}) == 5


def test_sendings_and_attachments_are_immutable(db: sa.Engine, storage: LocalStorage) -> None:
    alice = actor(db, "alice")
    number = f.dossier(db)
    upload(db, alice, number, storage, "billet.pdf", PDF)
    mark(db, alice, number, storage)
    for statement in (
        "UPDATE app.travel_book_sendings SET sent_by = 'mallory'",
        "DELETE FROM app.travel_book_sendings",
        "UPDATE app.outbox_attachments SET filename = 'x.pdf'",
        "DELETE FROM app.outbox_attachments",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="immutable"), db.begin() as conn:
            conn.execute(sa.text(statement))
    # The same versions sent again, even through another mail, are refused by the database itself.
    unique = "travel_book_sendings_dossier_number_document_version_ids_key"
    with pytest.raises(sa.exc.IntegrityError, match=unique), db.begin() as conn:
        mail_id = outbox.enqueue(
            conn,
            kind="balance_charge_failed",
            language="fr",
            to_address="x@example.org",
            context={"client_name": "X", "dossier_number": number, "amount": "1 €", "due_date": "demain"},
            dossier_number=number,
            actor="mallory",
        )
        conn.execute(
            sa.text(
                """INSERT INTO app.travel_book_sendings (dossier_number, sent_by, reason, document_version_ids,
                                                         attached, mail_id)
                   SELECT dossier_number, 'mallory', 'manual', document_version_ids, attached, :mail
                   FROM app.travel_book_sendings"""
            ),
            {"mail": mail_id},
        )
