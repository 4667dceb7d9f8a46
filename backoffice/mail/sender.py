"""The sender: delivers due outbox mails over SMTP, retries with backoff, never sends twice.

Each mail is claimed in a transaction of its own with `FOR UPDATE SKIP LOCKED`: the row stays
locked while it is handed to the SMTP server, so a second sender skips it instead of sending it
again, and its new state is committed as soon as the server has accepted it.

One window remains: a crash (or the database going away) after the SMTP server accepted the mail
and before that commit. The mail is then still `pending` and is sent again later. It carries the
same Message-ID as the first time (generated when it was queued), which is what receiving systems
use to recognise and drop the duplicate. The same goes for an attempt whose outcome is unknown
(the connection dropped after the data was sent): it is retried under the same Message-ID.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.config import get_settings
from backoffice.domain.errors import InvalidInput
from backoffice.domain.permissions import SYSTEM, Actor
from backoffice.services import audit

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)
SMTP_TIMEOUT = 10.0
MAX_ERROR = 500

_CLAIM = sa.text(
    """SELECT id, to_address, subject, body_text, body_html, dossier_number, created_at, attempts, message_id,
              language
       FROM app.outbox_mails
       WHERE state = 'pending' AND next_attempt_at <= :now
       ORDER BY next_attempt_at, id
       LIMIT 1
       FOR UPDATE SKIP LOCKED"""
)
_ATTACHMENTS = sa.text(
    "SELECT filename, media_type, data FROM app.outbox_attachments WHERE mail_id = :id ORDER BY position"
)
_SENT = sa.text(
    """UPDATE app.outbox_mails SET state = 'sent', attempts = attempts + 1, sent_at = :now, last_error = NULL
       WHERE id = :id"""
)
_RETRY = sa.text(
    """UPDATE app.outbox_mails SET state = :state, attempts = :attempts, next_attempt_at = :next, last_error = :error
       WHERE id = :id"""
)


@dataclass
class DeliveryReport:
    sent: int = 0
    deferred: int = 0
    failed: int = 0


class _Permanent(Exception):
    """The server refused this mail for good (5xx): retrying would get the same answer."""


class _Transient(Exception):
    """This attempt failed but a later one may succeed (4xx, timeout, connection lost)."""

    def __init__(self, message: str, *, connection_lost: bool) -> None:
        super().__init__(message)
        self.connection_lost = connection_lost


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after `attempts` failed ones: 1 min, 2, 4... at most 1 h."""
    return min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)


def _message(row: Any, sender: str, attachments: list[Any]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Message-ID"] = row.message_id
    # The queuing time, not the sending time: every attempt sends the same message.
    message["Date"] = format_datetime(row.created_at)
    message.set_content(row.body_text)
    if row.body_html is not None:
        message.add_alternative(row.body_html, subtype="html")
    # Each attachment turns the message into multipart/mixed, the bodies staying its first part.
    for attachment in attachments:
        maintype, _, subtype = attachment.media_type.partition("/")
        message.add_attachment(bytes(attachment.data), maintype=maintype, subtype=subtype, filename=attachment.filename)
    # Set last: turning the message multipart moves the Content-* headers set before to the inner part.
    message["Content-Language"] = row.language
    return message


def _classify(exc: Exception) -> Exception:
    if isinstance(exc, smtplib.SMTPConnectError):
        # The greeting refused us, not this mail.
        return _Transient(f"connect: {exc.smtp_code} {exc.smtp_error!r}", connection_lost=True)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        return _answer(code, text)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _answer(exc.smtp_code, exc.smtp_error)
    return _Transient(f"{type(exc).__name__}: {exc}", connection_lost=True)


def _answer(code: int, text: bytes | str) -> Exception:
    detail = f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    if 500 <= code < 600:
        return _Permanent(detail)
    # 421: the server is closing the session, so the next mail needs a new connection.
    return _Transient(detail, connection_lost=code == 421)


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is None:
        return
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def deliver_due(
    engine: Engine,
    smtp_host: str | None,
    smtp_port: int,
    now: datetime | None = None,
    batch: int = 50,
    *,
    sender: str | None = None,
    max_attempts: int | None = None,
    timeout: float = SMTP_TIMEOUT,
) -> DeliveryReport:
    """Send up to `batch` due pending mails. Without an SMTP host nothing is sent: mails wait.

    `sender` and `max_attempts` default to the settings (BACKOFFICE_SMTP_SENDER, _MAX_ATTEMPTS)."""
    report = DeliveryReport()
    if not smtp_host:
        return report
    settings = get_settings()
    sender = sender or settings.smtp_sender
    max_attempts = max_attempts or settings.smtp_max_attempts
    now = now or datetime.now(UTC)
    smtp: smtplib.SMTP | None = None
    try:
        for _ in range(batch):
            with engine.connect() as conn, conn.begin():
                row = conn.execute(_CLAIM, {"now": now}).first()
                if row is None:
                    break
                message = _message(row, sender, conn.execute(_ATTACHMENTS, {"id": row.id}).all())
                try:
                    if smtp is None:
                        smtp = smtplib.SMTP(smtp_host, smtp_port, timeout=timeout)
                    smtp.send_message(message, from_addr=sender, to_addrs=[row.to_address])
                except (OSError, smtplib.SMTPException) as exc:  # SMTPException is an OSError too
                    outcome = _classify(exc)
                else:
                    conn.execute(_SENT, {"id": row.id, "now": now})
                    audit.record(
                        conn, SYSTEM, "send_mail", dossier_number=row.dossier_number, after=_trace(row, "sent")
                    )
                    report.sent += 1
                    continue
                attempts = row.attempts + 1
                give_up = isinstance(outcome, _Permanent) or attempts >= max_attempts
                conn.execute(
                    _RETRY,
                    {
                        "id": row.id,
                        "state": "failed" if give_up else "pending",
                        "attempts": attempts,
                        "next": now + backoff(attempts),
                        "error": str(outcome)[:MAX_ERROR],
                    },
                )
                if give_up:
                    audit.record(
                        conn,
                        SYSTEM,
                        "send_mail",
                        outcome="failed",
                        dossier_number=row.dossier_number,
                        after=_trace(row, "failed"),
                        detail=str(outcome)[:MAX_ERROR],
                    )
                    report.failed += 1
                else:
                    report.deferred += 1
            if isinstance(outcome, _Transient) and outcome.connection_lost:
                # The server is unreachable: the other due mails would only fail the same way.
                break
    finally:
        _close(smtp)
    return report


def _trace(row: Any, state: str) -> dict[str, Any]:
    return {"mail_id": row.id, "message_id": row.message_id, "to": row.to_address, "state": state}


def deliver_now(engine: Engine, actor: Actor, smtp_host: str | None, smtp_port: int) -> DeliveryReport:
    """The Outbox page's "send now": the same delivery as the scheduler's, asked by a person."""
    audit.require(engine, actor, "view_outbox", "send_outbox")
    if not smtp_host:
        raise InvalidInput("smtp_host", "no SMTP server is configured (set BACKOFFICE_SMTP_HOST)")
    report = deliver_due(engine, smtp_host, smtp_port)
    audit.record_apart(engine, actor.login, "send_outbox", after=vars(report))
    return report
