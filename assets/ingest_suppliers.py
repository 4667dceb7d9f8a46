"""The supplier reference, loaded into raw.suppliers and app.suppliers."""

import dagster as dg

from assets.daily_ingest import daily_ingest
from backoffice.ingest import load_suppliers

SPECS = [
    dg.AssetSpec(["raw", "suppliers"], description="The last supplier reference file, as delivered."),
    dg.AssetSpec(["app", "suppliers"], description="Every supplier ever listed, with its latest details."),
]

ingest_suppliers = daily_ingest(
    "ingest_suppliers",
    SPECS,
    load_suppliers,
    description="""Supplier reference (landing/reference/suppliers.csv, a full snapshot): reloaded when
    the file changes, so the day's bookings find the suppliers they name.""",
)
