"""The code location: assets, job, schedule and resources."""

from __future__ import annotations

import dagster as dg

from assets.dbt import dbt_models
from assets.ingest_bookings import ingest_bookings
from assets.ingest_suppliers import ingest_suppliers
from pipelines.jobs import daily_pipeline, ingest_only
from pipelines.resources import Database, LandingZone, dbt_resource
from pipelines.schedules import daily_pipeline_schedule

defs = dg.Definitions(
    assets=[ingest_suppliers, ingest_bookings, dbt_models],
    jobs=[daily_pipeline, ingest_only],
    schedules=[daily_pipeline_schedule],
    resources={"database": Database(), "landing": LandingZone(), "dbt": dbt_resource()},
)
