"""The day's booking snapshots, loaded into raw.booking_snapshots and the app.* dossier tables."""

from collections.abc import Iterator
from datetime import date

import dagster as dg

from assets.ingest_metadata import materialized
from assets.partitions import daily, one_run_per_day, retried_if_transient
from assets.quality import check_results, check_specs
from backoffice.ingest import load_bookings_day
from pipelines.resources import Database, LandingZone

# Keys are schema/table, as dagster-dbt names the dbt sources that read these tables.
SPECS = [
    dg.AssetSpec(["raw", "booking_snapshots"], description="Every valid booking snapshot, as delivered."),
    dg.AssetSpec(["app", "dossiers"], description="One row per dossier: the latest platform version's state."),
    dg.AssetSpec(["app", "travellers"], description="Travellers of each dossier."),
    dg.AssetSpec(["app", "services"], description="Services of each dossier.", deps=[["app", "suppliers"]]),
    dg.AssetSpec(["app", "price_lines"], description="Every price line ever added to a dossier (immutable)."),
    dg.AssetSpec(["app", "payment_schedule"], description="Client payments due for each dossier."),
]


CHECKED = ["raw", "booking_snapshots"]


@dg.multi_asset(
    specs=SPECS,
    check_specs=check_specs(CHECKED, "bookings"),
    name="ingest_bookings",
    partitions_def=daily,
    group_name="ingest",
    backfill_policy=one_run_per_day,
)
def ingest_bookings(
    context: dg.AssetExecutionContext, database: Database, landing: LandingZone
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Booking snapshots of the day (landing/bookings/<day>/*.jsonl): the highest version of each
    dossier becomes its state, its price lines are added; bad lines and older versions go to
    raw.rejections."""
    day = date.fromisoformat(context.partition_key)
    with retried_if_transient():
        result = load_bookings_day(day, landing.root(), database.engine())
    if result.files == 0:
        context.log.warning(f"no {result.source} file for {context.partition_key} under {landing.root()}")
    context.log.info(result.summary())
    yield from materialized(SPECS, result)
    yield from check_results(context, database.engine(), CHECKED, "bookings", result.source, day)
