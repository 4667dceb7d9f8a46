"""Jobs over the day partitions, in one process.

In-process: the multiprocess executor re-imports dagster and dbt for every step (~8 s each).
"""

from __future__ import annotations

import dagster as dg

daily_pipeline = dg.define_asset_job(
    "daily_pipeline",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="Ingest the day's landing files, then dbt build with its tests.",
)

# Without checks: the dbt tests on ingested tables run in the dbt step, which this job leaves out.
ingest_only = dg.define_asset_job(
    "ingest_only",
    selection=dg.AssetSelection.groups("ingest").without_checks(),
    executor_def=dg.in_process_executor,
    description="Ingest the day's landing files only (the days before the last of a range).",
)
