"""The app's own delivery loop: delivers the outbox every `interval` seconds until told to stop.

It runs beside the Dagster sensor, not instead of it: whichever reaches a due mail first claims
it (`FOR UPDATE SKIP LOCKED` in `deliver_due`), so the two never send the same mail twice and
mail still leaves when only one of them is running.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.engine import Engine

from backoffice.config import Settings
from backoffice.mail.sender import deliver_due

log = logging.getLogger(__name__)


def run_forever(engine: Engine, settings: Settings, stop: threading.Event, interval: float = 30.0) -> None:
    """Deliver due mails now, then every `interval` seconds, until `stop` is set.

    Without an SMTP host it only waits: mails stay pending. A failure (database or mail server
    away) is logged and the next round tries again; the loop itself never dies of it."""
    while not stop.is_set():
        if settings.smtp_host:
            try:
                report = deliver_due(
                    engine,
                    settings.smtp_host,
                    settings.smtp_port,
                    sender=settings.smtp_sender,
                    max_attempts=settings.smtp_max_attempts,
                )
            except Exception:
                log.exception("outbox delivery failed; next try in %s s", interval)
            else:
                if report.sent or report.deferred or report.failed:
                    log.info("outbox: %s sent, %s deferred, %s failed", report.sent, report.deferred, report.failed)
        stop.wait(interval)
