"""Sensor: delivers the mail outbox every 30 seconds when an SMTP server is configured."""

from __future__ import annotations

import dagster as dg

from backoffice.config import get_settings
from backoffice.mail.sender import deliver_due
from pipelines.resources import Database


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def deliver_outbox(context: dg.SensorEvaluationContext, database: Database) -> dg.SkipReason:
    """Sends the due mails of the outbox over SMTP (BACKOFFICE_SMTP_HOST/PORT). It launches no
    run: delivery is a few short transactions, done in the sensor tick itself. Without an SMTP
    host, mails stay pending and visible on the app's Outbox page."""
    settings = get_settings()
    if not settings.smtp_host:
        return dg.SkipReason("BACKOFFICE_SMTP_HOST is not set: mails stay in the outbox")
    report = deliver_due(database.engine(), settings.smtp_host, settings.smtp_port)
    context.log.info(f"outbox: {report.sent} sent, {report.deferred} deferred, {report.failed} failed")
    return dg.SkipReason(f"{report.sent} sent, {report.deferred} deferred, {report.failed} failed")
