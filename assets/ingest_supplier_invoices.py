"""The day's supplier invoices (CSV, UBL, Factur-X), loaded into raw.* and app.supplier_invoice*."""

import dagster as dg

from assets.daily_ingest import daily_ingest
from backoffice.ingest import load_supplier_invoices_day

# Sellers and supplier codes are resolved through app.suppliers: the reference loads first.
SUPPLIERS = [["app", "suppliers"]]
SPECS = [
    dg.AssetSpec(
        ["raw", "supplier_invoice_lines"], description="Every invoice line received, as delivered.", deps=SUPPLIERS
    ),
    dg.AssetSpec(["app", "supplier_invoices"], description="One row per supplier invoice (immutable).", deps=SUPPLIERS),
    dg.AssetSpec(
        ["app", "supplier_invoice_lines"], description="The lines of each supplier invoice (immutable).", deps=SUPPLIERS
    ),
]


ingest_supplier_invoices = daily_ingest(
    "ingest_supplier_invoices",
    SPECS,
    load_supplier_invoices_day,
    suite="supplier_invoice_lines",
    description="""Supplier invoices of the day (landing/supplier_invoices/<day>/*.csv|*.xml|*.pdf):
    complete invoices load once; an invoice with a bad line, an unknown supplier, or re-sent with
    other content is rejected whole to raw.rejections.""",
)
