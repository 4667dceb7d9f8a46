"""The travel book: the dossier's current documents mailed to the client, once the agent marks it complete.

A dossier's book is `complete` or not, and its mode is `automatic` (the default) or `manual`.
One rule drives the automatic mode: whenever an action leaves a dossier complete, automatic, and
holding a set of current document versions that was never sent, the book is queued to the client
in that same transaction. So marking a book complete sends it, and a document uploaded or replaced
afterwards sends the updated book (the hook `after_document_change`, called by
backoffice.services.documents). In manual mode nothing leaves until an agent presses "send now".

The same set of versions is never sent twice to one dossier (the database refuses it too), so a
replayed or concurrent action cannot mail the client the same book again. Every sending is a row
of app.travel_book_sendings naming the exact versions it carried and its outbox mail.

The documents travel as attachments when together they fit in one mail
(backoffice.mail.outbox.MAX_ATTACHMENTS_BYTES); otherwise the mail lists them and says they are
too large to attach, and the sending is recorded as not attached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from babel.dates import format_date
from sqlalchemy.engine import Connection

from backoffice.documents.storage import Storage
from backoffice.domain.errors import DomainError, InvalidInput, NotFound, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.mail import outbox
from backoffice.mail.templates import language_for
from backoffice.services import audit, documents, idempotency
from backoffice.services.unit_of_work import UnitOfWork

MODES = ("automatic", "manual")
_BABEL_LOCALES = {"fr": "fr_FR", "en": "en_GB"}


class AlreadySent(DomainError):
    """This exact set of document versions was already sent to the client."""


@dataclass(frozen=True)
class SentDocument:
    version_id: int
    document_id: int
    title: str
    version: int
    filename: str


@dataclass(frozen=True)
class Sending:
    """One sending of the book. `reason`: `completed` (marked complete, or switched to automatic),
    `manual` ("send now"), `new_version` (a document was added or replaced)."""

    id: int
    sent_at: datetime
    sent_by: str
    reason: str
    attached: bool
    mail_id: int
    mail_state: str
    to_address: str
    documents: tuple[SentDocument, ...]

    @property
    def version_ids(self) -> tuple[int, ...]:
        return tuple(sorted(d.version_id for d in self.documents))


@dataclass(frozen=True)
class Change:
    """What `set_travel_book` left: the dossier's version, and the sending it queued, if any."""

    version: int
    sending_id: int | None


# NO KEY UPDATE, not UPDATE: it serialises the travel book's writers on the dossier row without
# waiting on the key-share lock that inserting a document (a foreign key to the dossier) takes.
_LOCK = sa.text(
    """SELECT dossier_number, version, travel_book_complete, travel_book_mode, client_first_name,
              client_last_name, client_email, client_language, destination, departure_date
       FROM app.dossiers WHERE dossier_number = :n FOR NO KEY UPDATE"""
)

_CURRENT_VERSIONS = sa.text(
    """SELECT DISTINCT ON (d.id) v.id, d.id AS document_id, d.title, v.version, v.original_filename, v.media_type,
              v.size_bytes
       FROM app.documents d JOIN app.document_versions v ON v.document_id = d.id
       WHERE d.dossier_number = :n
       ORDER BY d.id, v.version DESC"""
)


def _current_versions(conn: Connection, number: str) -> list[Any]:
    return list(conn.execute(_CURRENT_VERSIONS, {"n": number}))


def _sent_on(conn: Connection, number: str, version_ids: list[int]) -> datetime | None:
    return conn.execute(
        sa.text(
            """SELECT sent_at FROM app.travel_book_sendings
               WHERE dossier_number = :n AND document_version_ids = CAST(:ids AS bigint[])"""
        ),
        {"n": number, "ids": version_ids},
    ).scalar()


def _listed(row: Any) -> str:
    return row.original_filename if row.title == row.original_filename else f"{row.title} ({row.original_filename})"


def _send(conn: Connection, actor: Actor, dossier: Any, versions: list[Any], reason: str, storage: Storage) -> int:
    """Queue the book with these versions and record the sending; the caller checked it is new."""
    language = language_for(dossier.client_language)
    address = outbox.validate_address(dossier.client_email or "", "client_email")
    attached = sum(v.size_bytes for v in versions) <= outbox.MAX_ATTACHMENTS_BYTES
    attachments = []
    if attached:
        for v in versions:
            filename, media_type, data = documents.read_version(conn, storage, v.id)
            attachments.append(outbox.Attachment(filename, media_type, data))
    earlier = conn.execute(
        sa.text("SELECT 1 FROM app.travel_book_sendings WHERE dossier_number = :n LIMIT 1"),
        {"n": dossier.dossier_number},
    ).first()
    mail_id = outbox.enqueue(
        conn,
        kind="travel_book",
        language=language,
        to_address=address,
        context={
            "client_name": f"{dossier.client_first_name} {dossier.client_last_name}",
            "dossier_number": dossier.dossier_number,
            "destination": dossier.destination,
            "departure_date": format_date(dossier.departure_date, format="long", locale=_BABEL_LOCALES[language]),
            "documents": [_listed(v) for v in versions],
            "attached": attached,
            "updated": earlier is not None,
        },
        dossier_number=dossier.dossier_number,
        actor=actor.login,
        attachments=attachments,
    )
    version_ids = sorted(v.id for v in versions)
    sending_id = conn.execute(
        sa.text(
            """INSERT INTO app.travel_book_sendings (dossier_number, sent_by, reason, document_version_ids, attached,
                                                     mail_id)
               VALUES (:n, :by, :reason, CAST(:ids AS bigint[]), :attached, :mail) RETURNING id"""
        ),
        {
            "n": dossier.dossier_number,
            "by": actor.login,
            "reason": reason,
            "ids": version_ids,
            "attached": attached,
            "mail": mail_id,
        },
    ).scalar_one()
    audit.record(
        conn,
        actor.login,
        "send_travel_book",
        dossier_number=dossier.dossier_number,
        after={
            "sending_id": sending_id,
            "mail_id": mail_id,
            "reason": reason,
            "attached": attached,
            "to": address,
            "document_version_ids": version_ids,
        },
    )
    return sending_id


def _automatic(conn: Connection, actor: Actor, dossier: Any, reason: str, storage: Storage) -> int | None:
    """The automatic rule: queue the book if it is complete, automatic, and this set was never sent."""
    if not dossier.travel_book_complete or dossier.travel_book_mode != "automatic":
        return None
    versions = _current_versions(conn, dossier.dossier_number)
    if not versions or _sent_on(conn, dossier.dossier_number, sorted(v.id for v in versions)) is not None:
        return None
    return _send(conn, actor, dossier, versions, reason, storage)


def set_travel_book(
    uow: UnitOfWork,
    actor: Actor,
    *,
    dossier_number: str,
    complete: bool,
    mode: str,
    expected_version: int,
    idempotency_key: str,
    storage: Storage | None = None,
) -> Change:
    """Mark the travel book complete or not and choose its sending mode, in one versioned write.

    Leaving the book complete in automatic mode queues it to the client in the same transaction
    (unless these very versions were already sent). A book with no document cannot be complete.
    """
    action = "set_travel_book"
    audit.require(uow.engine, actor, "manage_documents", action, dossier_number)
    try:
        if not isinstance(dossier_number, str) or not dossier_number.strip():
            raise InvalidInput("dossier_number", "is required")
        if not isinstance(complete, bool):
            raise InvalidInput("travel_book_complete", f"{complete!r} is not true or false")
        if mode not in MODES:
            raise InvalidInput("travel_book_mode", f"{mode!r} is not one of {', '.join(MODES)}")
    except InvalidInput as error:
        audit.refuse(uow, actor, action, dossier_number if isinstance(dossier_number, str) else None, error)
    number = dossier_number.strip()
    request = {"dossier_number": number, "complete": complete, "mode": mode, "expected_version": expected_version}
    earlier = idempotency.claim(uow.conn, idempotency_key, action, request, actor.login)
    if earlier is not None:
        return Change(**earlier)
    dossier = uow.conn.execute(_LOCK, {"n": number}).first()
    if dossier is None:
        audit.refuse(uow, actor, action, number, NotFound(f"dossier {number} does not exist"))
    if dossier.version != expected_version:
        audit.refuse(uow, actor, action, number, StaleVersion(f"dossier {number}", expected_version, dossier.version))
    if complete and not _current_versions(uow.conn, number):
        audit.refuse(uow, actor, action, number, InvalidInput("documents", "the dossier has no travel documents yet"))
    if (complete, mode) == (dossier.travel_book_complete, dossier.travel_book_mode):
        change = Change(dossier.version, None)
    else:
        version = uow.conn.execute(
            sa.text(
                """UPDATE app.dossiers SET travel_book_complete = :complete, travel_book_mode = :mode,
                                           version = version + 1
                   WHERE dossier_number = :n RETURNING version"""
            ),
            {"n": number, "complete": complete, "mode": mode},
        ).scalar_one()
        updated = uow.conn.execute(_LOCK, {"n": number}).one()
        try:
            sending_id = _automatic(uow.conn, actor, updated, "completed", storage or documents.default_storage())
        except DomainError as error:
            audit.refuse(uow, actor, action, number, error)
        change = Change(version, sending_id)
        audit.record(
            uow.conn,
            actor.login,
            action,
            dossier_number=number,
            before={
                "version": dossier.version,
                "complete": dossier.travel_book_complete,
                "mode": dossier.travel_book_mode,
            },
            after={"version": version, "complete": complete, "mode": mode, "sending_id": sending_id},
        )
    idempotency.store(uow.conn, idempotency_key, {"version": change.version, "sending_id": change.sending_id})
    uow.commit()
    return change


def send_travel_book(
    uow: UnitOfWork, actor: Actor, *, dossier_number: str, idempotency_key: str, storage: Storage | None = None
) -> int:
    """ "Send now": queue the complete book with the current versions; returns the sending's id.

    Refused when the book is not marked complete, has no document, or these very versions were
    already sent (AlreadySent)."""
    action = "send_travel_book"
    audit.require(uow.engine, actor, "manage_documents", action, dossier_number)
    if not isinstance(dossier_number, str) or not dossier_number.strip():
        audit.refuse(uow, actor, action, None, InvalidInput("dossier_number", "is required"))
    number = dossier_number.strip()
    earlier = idempotency.claim(uow.conn, idempotency_key, action, {"dossier_number": number}, actor.login)
    if earlier is not None:
        return int(earlier["sending_id"])
    dossier = uow.conn.execute(_LOCK, {"n": number}).first()
    if dossier is None:
        audit.refuse(uow, actor, action, number, NotFound(f"dossier {number} does not exist"))
    if not dossier.travel_book_complete:
        audit.refuse(
            uow, actor, action, number, InvalidInput("travel_book_complete", "mark the travel book complete first")
        )
    versions = _current_versions(uow.conn, number)
    if not versions:
        audit.refuse(uow, actor, action, number, InvalidInput("documents", "the dossier has no travel documents yet"))
    sent_on = _sent_on(uow.conn, number, sorted(v.id for v in versions))
    if sent_on is not None:
        when = sent_on.astimezone(UTC)
        refusal = AlreadySent(f"these document versions were already sent to the client on {when:%Y-%m-%d %H:%M} UTC")
        audit.refuse(uow, actor, action, number, refusal)
    try:
        sending_id = _send(uow.conn, actor, dossier, versions, "manual", storage or documents.default_storage())
    except DomainError as error:
        audit.refuse(uow, actor, action, number, error)
    idempotency.store(uow.conn, idempotency_key, {"sending_id": sending_id})
    uow.commit()
    return sending_id


def after_document_change(conn: Connection, actor: Actor, dossier_number: str, storage: Storage) -> int | None:
    """Called by an upload or a replacement, in its transaction, once the new version is written:
    queues the updated book when the dossier's book is complete and automatic. Returns the
    sending's id, or None when nothing was sent."""
    dossier = conn.execute(_LOCK, {"n": dossier_number}).first()
    if dossier is None:
        return None
    return _automatic(conn, actor, dossier, "new_version", storage)


def list_sendings(conn: Connection, dossier_number: str) -> list[Sending]:
    """The dossier's travel book sendings, newest first, each with the versions it carried."""
    rows = conn.execute(
        sa.text(
            """SELECT s.id, s.sent_at, s.sent_by, s.reason, s.attached, s.mail_id, m.state AS mail_state,
                      m.to_address, s.document_version_ids
               FROM app.travel_book_sendings s JOIN app.outbox_mails m ON m.id = s.mail_id
               WHERE s.dossier_number = :n ORDER BY s.id DESC"""
        ),
        {"n": dossier_number},
    ).all()
    ids = sorted({i for row in rows for i in row.document_version_ids})
    sent = {
        r.version_id: SentDocument(**r._mapping)
        for r in conn.execute(
            sa.text(
                """SELECT v.id AS version_id, v.document_id, d.title, v.version, v.original_filename AS filename
                   FROM app.document_versions v JOIN app.documents d ON d.id = v.document_id
                   WHERE v.id = ANY(CAST(:ids AS bigint[]))"""
            ),
            {"ids": ids},
        )
    }
    return [
        Sending(
            **{k: v for k, v in row._mapping.items() if k != "document_version_ids"},
            documents=tuple(sorted((sent[i] for i in row.document_version_ids), key=lambda d: d.document_id)),
        )
        for row in rows
    ]
