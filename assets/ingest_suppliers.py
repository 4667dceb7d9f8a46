"""The supplier reference, loaded into raw.suppliers and app.suppliers."""

from collections.abc import Iterator
from datetime import date

import dagster as dg

from assets.ingest_metadata import materialized
from assets.partitions import daily, one_run_per_day, retried_if_transient
from backoffice.ingest import load_suppliers
from pipelines.resources import Database, LandingZone

SPECS = [
    dg.AssetSpec(["raw", "suppliers"], description="The last supplier reference file, as delivered."),
    dg.AssetSpec(["app", "suppliers"], description="Every supplier ever listed, with its latest details."),
]


@dg.multi_asset(
    specs=SPECS,
    name="ingest_suppliers",
    partitions_def=daily,
    group_name="ingest",
    backfill_policy=one_run_per_day,
)
def ingest_suppliers(
    context: dg.AssetExecutionContext, database: Database, landing: LandingZone
) -> Iterator[dg.MaterializeResult]:
    """Supplier reference (landing/reference/suppliers.csv, a full snapshot): reloaded when the
    file changes, so the day's bookings find the suppliers they name."""
    with retried_if_transient():
        result = load_suppliers(date.fromisoformat(context.partition_key), landing.root(), database.engine())
    if result.files == 0:
        context.log.warning(f"no {result.source} file for {context.partition_key} under {landing.root()}")
    context.log.info(result.summary())
    yield from materialized(SPECS, result)
