"""Sensors: a late file in a past day's folder re-runs that day."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg

from backoffice.domain.clock import accounting_today
from backoffice.ingest.late_files import late_days
from pipelines.jobs import daily_pipeline
from pipelines.resources import Database, LandingZone


@dg.sensor(job=daily_pipeline, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING)
def late_landing_files(
    context: dg.SensorEvaluationContext, database: Database, landing: LandingZone
) -> Iterator[dg.RunRequest]:
    """Re-runs a past day's partition when files land in its folder after it was loaded
    (a supplier's late invoice, a re-sent payments file). Loads are idempotent, so the re-run
    adds what is new and changes nothing else."""
    today = accounting_today()
    for late in late_days(database.engine(), landing.root(), today):
        context.log.info(f"{late.day}: {len(late.files)} late file(s): {', '.join(late.files[:5])}")
        yield dg.RunRequest(run_key=f"{late.day}:{late.digest}", partition_key=late.day.isoformat())
