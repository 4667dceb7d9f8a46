"""The outbox: a mail is a row written in the transaction of the action that sends it.

So the mail exists if and only if the action committed; the sender (backoffice.mail.sender)
delivers it later, and a mail server being down only delays it. Attachments are stored with the
mail (their bytes in app.outbox_attachments), so a queued mail never depends on anything else.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import make_msgid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from backoffice.domain.errors import InvalidInput
from backoffice.domain.permissions import Actor
from backoffice.mail.templates import render
from backoffice.services import audit
from backoffice.services.unit_of_work import UnitOfWork

# Deliberately simple: one local part, one dotted domain, no spaces, no display name, no
# newline (a header injection). What the mail server accepts beyond that it tells us itself.
ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
MAX_ADDRESS = 254
# The Message-ID's right-hand side: constant, so queuing never waits on a DNS lookup of the host.
MESSAGE_ID_DOMAIN = "outbox.backoffice"
STATES = ("pending", "sent", "failed")
# Base64 makes attachments a third bigger: 7 MB of files stays under 10 MB of message, the
# default size limit of Postfix and the smallest one common mail servers apply.
MAX_ATTACHMENTS_BYTES = 7_000_000


@dataclass(frozen=True)
class Attachment:
    filename: str
    media_type: str
    data: bytes


def validate_address(to_address: str, field: str = "to_address") -> str:
    address = (to_address or "").strip()
    if not address:
        raise InvalidInput(field, "is required")
    if len(address) > MAX_ADDRESS or not ADDRESS.match(address):
        raise InvalidInput(field, f"{address!r} is not a valid e-mail address")
    return address


def enqueue(
    conn: Connection,
    *,
    kind: str,
    language: str | None,
    to_address: str,
    context: dict[str, Any],
    dossier_number: str | None,
    actor: str,
    attachments: Sequence[Attachment] = (),
) -> int:
    """Queue a mail inside the caller's transaction; returns its id. `actor` is the login of
    whoever did the action (or backoffice.domain.permissions.SYSTEM). Nothing is sent here.

    Attachments together may not exceed MAX_ATTACHMENTS_BYTES: a caller with more to send says
    so in the mail instead (see backoffice.services.travel_book)."""
    address = validate_address(to_address)
    _check_attachments(attachments)
    mail = render(kind, language, context)
    mail_id = conn.execute(
        sa.text(
            """INSERT INTO app.outbox_mails (kind, language, to_address, subject, body_text, body_html,
                                             dossier_number, created_by, message_id)
               VALUES (:kind, :language, :to, :subject, :text, :html, :dossier, :actor, :message_id)
               RETURNING id"""
        ),
        {
            "kind": kind,
            "language": mail.language,
            "to": address,
            "subject": mail.subject,
            "text": mail.body_text,
            "html": mail.body_html,
            "dossier": dossier_number,
            "actor": actor,
            "message_id": make_msgid(domain=MESSAGE_ID_DOMAIN),
        },
    ).scalar_one()
    for position, attachment in enumerate(attachments, start=1):
        conn.execute(
            sa.text(
                """INSERT INTO app.outbox_attachments
                       (mail_id, position, filename, media_type, size_bytes, sha256, data)
                   VALUES (:mail, :position, :filename, :media, :size, :sha, :data)"""
            ),
            {
                "mail": mail_id,
                "position": position,
                "filename": attachment.filename,
                "media": attachment.media_type,
                "size": len(attachment.data),
                "sha": hashlib.sha256(attachment.data).hexdigest(),
                "data": attachment.data,
            },
        )
    audit.record(
        conn,
        actor,
        "enqueue_mail",
        dossier_number=dossier_number,
        after={
            "mail_id": mail_id,
            "kind": kind,
            "to": address,
            "language": mail.language,
            **({"attachments": [a.filename for a in attachments]} if attachments else {}),
        },
    )
    return mail_id


def _check_attachments(attachments: Sequence[Attachment]) -> None:
    for attachment in attachments:
        name = attachment.filename
        if not name or not name.isprintable() or "/" in name or "\\" in name:
            raise InvalidInput("attachments", f"{name!r} is not a plain file name")
        if not attachment.data:
            raise InvalidInput("attachments", f"{name!r} is empty")
        maintype, _, subtype = attachment.media_type.partition("/")
        if not maintype or not subtype:
            raise InvalidInput("attachments", f"{attachment.media_type!r} is not a media type")
    total = sum(len(a.data) for a in attachments)
    if total > MAX_ATTACHMENTS_BYTES:
        raise InvalidInput(
            "attachments", f"{total} bytes in all, more than the {MAX_ATTACHMENTS_BYTES} a mail may carry"
        )


@dataclass(frozen=True)
class OutboxMail:
    id: int
    state: str
    kind: str
    language: str
    to_address: str
    subject: str
    dossier_number: str | None
    created_at: datetime
    created_by: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    sent_at: datetime | None


def list_mails(uow: UnitOfWork, actor: Actor, *, state: str | None = None, limit: int = 200) -> list[OutboxMail]:
    """The most recent mails, newest first, optionally in one state."""
    audit.require(uow.engine, actor, "view_outbox", "list_outbox")
    if state is not None and state not in STATES:
        raise InvalidInput("state", f"{state!r} is not one of {', '.join(STATES)}")
    rows = uow.conn.execute(
        sa.text(
            """SELECT id, state, kind, language, to_address, subject, dossier_number, created_at, created_by,
                      attempts, next_attempt_at, last_error, sent_at
               FROM app.outbox_mails
               WHERE CAST(:state AS text) IS NULL OR state = :state
               ORDER BY id DESC LIMIT :limit"""
        ),
        {"state": state, "limit": limit},
    )
    return [OutboxMail(**r._mapping) for r in rows]
