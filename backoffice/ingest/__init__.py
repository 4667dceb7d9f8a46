"""Ingestion of the landing zone (shared/contracts/landing.md) into raw.* and app.*.

Pure Python and SQL: Dagster assets wrap these functions, nothing here imports Dagster. The
loaders are imported on first use, so that the booking parser's worker process, which imports
only the contract and row modules, starts without SQLAlchemy and the other sources' libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backoffice.ingest.bookings import load_bookings_day
    from backoffice.ingest.payments import load_payments_day
    from backoffice.ingest.result import IngestResult
    from backoffice.ingest.supplier_invoices import load_supplier_invoices_day
    from backoffice.ingest.suppliers import load_suppliers

_HOMES = {
    "IngestResult": "backoffice.ingest.result",
    "load_bookings_day": "backoffice.ingest.bookings",
    "load_payments_day": "backoffice.ingest.payments",
    "load_supplier_invoices_day": "backoffice.ingest.supplier_invoices",
    "load_suppliers": "backoffice.ingest.suppliers",
}

__all__ = ["IngestResult", "load_bookings_day", "load_payments_day", "load_supplier_invoices_day", "load_suppliers"]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'backoffice.ingest' has no attribute {name!r}")
