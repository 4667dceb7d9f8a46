"""The answers the pipeline should find: true matches, billing statuses, malformed records."""

from __future__ import annotations

from .amounts import fmt, parse
from .dossiers import DossierPlan
from .supplier_invoices import Intent

TOLERANCE_CENTS = 100
MATCH_COLUMNS = ["supplier_code", "invoice_number", "line_number", "dossier_number", "reference_kind"]
BILLING_COLUMNS = ["dossier_number", "supplier_code", "currency", "expected_amount", "invoiced_amount", "status"]
MALFORMED_COLUMNS = ["source", "file", "line", "record_key", "reason"]


def billing_status(expected: int, invoiced: int, tolerance: int = TOLERANCE_CENTS) -> str:
    """Status rules of outputs.md, in cents."""
    if invoiced == 0 and expected != 0:
        return "not_invoiced"
    if abs(invoiced - expected) <= tolerance:
        return "invoiced"
    if invoiced > expected + tolerance:
        return "over_invoiced"
    return "partially_invoiced"


def expected_by_supplier(plan: DossierPlan) -> dict[str, int]:
    """Purchase totals of the active lines of the final state, per supplier.

    Quotes and options commit us to nothing: only confirmed or cancelled dossiers (whose
    cancellation fees are confirmed services of their own) expect supplier invoices.
    """
    expected: dict[str, int] = {}
    if plan.doc["status"] not in ("confirmed", "cancelled"):
        return expected
    for service in plan.doc["services"]:
        if service["status"] != "confirmed":
            continue
        total = sum(ln["quantity"] * parse(ln["unit_purchase_amount"]) for ln in service["lines"])
        code = service["supplier_code"]
        expected[code] = expected.get(code, 0) + total
    return expected


def billing_rows(plan: DossierPlan, intents: list[Intent]) -> list[list[str]]:
    """One row per supplier with something expected or invoiced, in supplier_code order."""
    expected = expected_by_supplier(plan)
    invoiced: dict[str, int] = {}
    for intent in intents:
        invoiced[intent.supplier_code] = invoiced.get(intent.supplier_code, 0) + intent.signed
    currencies = {s["supplier_code"]: s["lines"][0]["purchase_currency"] for s in plan.doc["services"] if s["lines"]}
    rows = []
    for code in sorted(set(expected) | set(invoiced)):
        e, i = expected.get(code, 0), invoiced.get(code, 0)
        if e == 0 and code not in invoiced:
            continue
        rows.append([plan.number, code, currencies[code], fmt(e), fmt(i), billing_status(e, i)])
    return rows
