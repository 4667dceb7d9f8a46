"""The code location: assets, job, schedule and resources."""

from __future__ import annotations

import dagster as dg

from assets.archive import archive
from assets.balances import charge_balances
from assets.dbt import dbt_models
from assets.export import accounting_export
from assets.ingest_bookings import ingest_bookings
from assets.ingest_payments import ingest_payments
from assets.ingest_supplier_invoices import ingest_supplier_invoices
from assets.ingest_suppliers import ingest_suppliers
from pipelines.jobs import daily_archive, daily_pipeline, ingest_only
from pipelines.mail_sensor import deliver_outbox
from pipelines.resources import Database, LandingZone, dbt_resource
from pipelines.schedules import daily_archive_schedule, daily_pipeline_schedule
from pipelines.sensors import late_landing_files

defs = dg.Definitions(
    assets=[
        ingest_suppliers,
        ingest_bookings,
        ingest_payments,
        ingest_supplier_invoices,
        charge_balances,
        dbt_models,
        accounting_export,
        archive,
    ],
    jobs=[daily_pipeline, ingest_only, daily_archive],
    schedules=[daily_pipeline_schedule, daily_archive_schedule],
    sensors=[late_landing_files, deliver_outbox],
    resources={"database": Database(), "landing": LandingZone(), "dbt": dbt_resource()},
)
