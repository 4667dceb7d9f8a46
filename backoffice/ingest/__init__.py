"""Ingestion of the landing zone (shared/contracts/landing.md) into raw.* and app.*.

Pure Python and SQL: Dagster assets wrap these functions, nothing here imports Dagster.
"""

from backoffice.ingest.bookings import load_bookings_day
from backoffice.ingest.payments import load_payments_day
from backoffice.ingest.result import IngestResult
from backoffice.ingest.supplier_invoices import load_supplier_invoices_day
from backoffice.ingest.suppliers import load_suppliers

__all__ = ["IngestResult", "load_bookings_day", "load_payments_day", "load_supplier_invoices_day", "load_suppliers"]
