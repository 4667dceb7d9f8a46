"""Jobs over the day partitions, in one process.

In-process: the multiprocess executor re-imports dagster and dbt for every step (~8 s each).
"""

from __future__ import annotations

import dagster as dg

from assets.ingest_bookings import ingest_bookings
from assets.ingest_payments import ingest_payments
from assets.ingest_supplier_invoices import ingest_supplier_invoices

daily_pipeline = dg.define_asset_job(
    "daily_pipeline",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(["archive"]),
    executor_def=dg.in_process_executor,
    description="Ingest the day's landing files, charge the balances due, dbt build with its tests, then the export.",
)

# Without the dbt tests on ingested tables (they run in the dbt step, which this job leaves out),
# but with the ingest assets' own quality checks: those assets yield them and cannot be split.
ingest_only = dg.define_asset_job(
    "ingest_only",
    selection=dg.AssetSelection.groups("ingest").without_checks()
    | dg.AssetSelection.checks(ingest_bookings, ingest_payments, ingest_supplier_invoices),
    executor_def=dg.in_process_executor,
    description="Ingest the day's landing files only (the days before the last of a range).",
)

# The analytics archive reads what the daily pipeline built: a job of its own, scheduled after it.
daily_archive = dg.define_asset_job(
    "daily_archive",
    selection=dg.AssetSelection.assets(["archive"]),
    executor_def=dg.in_process_executor,
    description="Snapshot the accountants' marts and the day's export to the Parquet archive (docs/analytics.md).",
)
