"""The day's payments, loaded into raw.payments and app.payments."""

import dagster as dg

from assets.daily_ingest import daily_ingest
from backoffice.ingest import load_payments_day

SPECS = [
    dg.AssetSpec(["raw", "payments"], description="Every valid payment, as delivered, once per payment_id."),
    dg.AssetSpec(
        ["app", "payments"], description="Client payments (immutable); dossier_number null when unattributed."
    ),
]

ingest_payments = daily_ingest(
    "ingest_payments",
    SPECS,
    load_payments_day,
    suite="payments",
    description="""Payments of the day (landing/payments/<day>/*.csv): each payment_id loads once; bad
    rows and a payment_id re-sent with other content go to raw.rejections.""",
)
