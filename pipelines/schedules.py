"""When the daily job runs: early morning in Paris, for the day that just ended."""

from datetime import timedelta

import dagster as dg

from pipelines.jobs import daily_archive, daily_pipeline


@dg.schedule(cron_schedule="30 5 * * *", execution_timezone="Europe/Paris", job=daily_pipeline)
def daily_pipeline_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """At 05:30 Paris time, run yesterday's partition: its landing files are complete by then."""
    day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=day, partition_key=day)


@dg.schedule(cron_schedule="30 7 * * *", execution_timezone="Europe/Paris", job=daily_archive)
def daily_archive_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """At 07:30 Paris time, two hours after the daily pipeline: archive yesterday's snapshot."""
    day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=day, partition_key=day)
