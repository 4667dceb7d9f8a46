"""The day's booking snapshots, loaded into raw.booking_snapshots and the app.* dossier tables."""

import dagster as dg

from assets.daily_ingest import daily_ingest
from backoffice.ingest import load_bookings_day

# Keys are schema/table, as dagster-dbt names the dbt sources that read these tables.
SPECS = [
    dg.AssetSpec(["raw", "booking_snapshots"], description="Every valid booking snapshot, as delivered."),
    dg.AssetSpec(["app", "dossiers"], description="One row per dossier: the latest platform version's state."),
    dg.AssetSpec(["app", "travellers"], description="Travellers of each dossier."),
    dg.AssetSpec(["app", "services"], description="Services of each dossier.", deps=[["app", "suppliers"]]),
    dg.AssetSpec(["app", "price_lines"], description="Every price line ever added to a dossier (immutable)."),
    dg.AssetSpec(["app", "payment_schedule"], description="Client payments due for each dossier."),
]

ingest_bookings = daily_ingest(
    "ingest_bookings",
    SPECS,
    load_bookings_day,
    suite="bookings",
    description="""Booking snapshots of the day (landing/bookings/<day>/*.jsonl): the highest version of
    each dossier becomes its state, its price lines are added; bad lines and older versions go to
    raw.rejections.""",
)
