"""What suppliers invoice for a planned dossier, with the mess of real supplier billing.

At dossier creation each service yields invoice line *intents* (the day they will be invoiced,
amount, reference); the engine groups the intents of a supplier and day into invoices when that
day is written. Invoiced totals for the ground truth are summed from the same intents, so they
agree with the files by construction.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import accumulate
from typing import NamedTuple

from .amounts import fmt, parse, split_vat
from .catalog import Supplier
from .dossiers import DossierPlan, ServiceMeta
from .draw import between, pick

REFERENCE_KINDS = ("dossier_number", "supplier_reference", "traveller_name", "typo", "empty")
REFERENCE_CUM = tuple(accumulate((55, 20, 10, 8, 7)))
CSV_COLUMNS = [
    "supplier_code",
    "invoice_number",
    "kind",
    "invoice_date",
    "due_date",
    "currency",
    "line_number",
    "reference",
    "description",
    "amount_excl_tax",
    "vat_rate",
    "amount_incl_tax",
]


class Intent(NamedTuple):
    """One invoice line a supplier will send on `day` (a tuple: cheap to keep and to pickle)."""

    day: int
    supplier_code: str
    kind: str  # invoice | credit_note
    description: str
    excl: int
    incl: int
    vat_rate: str
    reference: str
    reference_kind: str
    dossier_number: str  # the truth; empty for a line that belongs to no dossier

    @property
    def signed(self) -> int:
        return -self.incl if self.kind == "credit_note" else self.incl


def typo(number: str, rng: random.Random) -> str:
    """A mistyped dossier number that can never be another valid dossier number."""
    year, digits = number[3:7], number[8:]
    style = between(rng, 0, 3)
    if style == 0 and len(digits) == 6:
        return f"BK-{year}-{digits[:-1]}"  # a digit lost
    if style == 2 and "0" in digits:
        return f"BK-{year}-{digits.replace('0', 'O')}"  # letter O for zero
    if style == 3:
        return f"BK-{year[2:]}-{digits}"  # short year
    return f"BK{year}{digits}"  # dashes dropped


def _reference(rng: random.Random, plan: DossierPlan, service: dict) -> tuple[str, str]:
    kind = rng.choices(REFERENCE_KINDS, cum_weights=REFERENCE_CUM)[0]
    if kind == "supplier_reference" and not service["supplier_reference"]:
        kind = "dossier_number"
    if kind == "dossier_number":
        return plan.number, kind
    if kind == "supplier_reference":
        return service["supplier_reference"], kind
    if kind == "traveller_name":
        last, first = pick(rng, plan.traveller_names)
        # Airline style (DUPONT/JEAN) or as a hotel clerk types it.
        return (f"{last.upper()}/{first.upper()}" if rng.random() < 0.5 else f"{last} {first}"), kind
    if kind == "typo":
        return typo(plan.number, rng), kind
    return "", kind


class _Maker:
    def __init__(self, rng: random.Random, plan: DossierPlan) -> None:
        self.rng = rng
        self.plan = plan
        self.out: list[Intent] = []

    def add(
        self, day: int, supplier: Supplier, service: dict, description: str, cents: int, kind: str = "invoice"
    ) -> None:
        excl, incl = split_vat(cents, supplier.invoice_vat_rate)
        reference, ref_kind = _reference(self.rng, self.plan, service)
        self.out.append(
            Intent(
                day,
                supplier.code,
                kind,
                description,
                excl,
                incl,
                supplier.invoice_vat_rate,
                reference,
                ref_kind,
                self.plan.number,
            )
        )


def _first_invoice_day(rng: random.Random, plan: DossierPlan, meta: ServiceMeta) -> int:
    assert plan.confirm_day is not None
    if meta.is_fee:
        return meta.added_day + between(rng, 2, 20)
    if meta.supplier.timing == "at_booking":
        return max(plan.confirm_day, meta.added_day) + between(rng, 1, 6)
    if meta.supplier.timing == "before_departure":
        return max(meta.start_day - between(rng, 10, 30), plan.confirm_day + 1)
    late = between(rng, 30, 90) if rng.random() < 0.12 else 0
    return meta.end_day + between(rng, 3, 30) + late


def _batches(rng: random.Random, meta: ServiceMeta, service: dict, first_day: int) -> list[tuple[int, list[dict]]]:
    """Lines grouped by the day they are invoiced: lines added after the first invoice come later."""
    first: list[dict] = []
    later: list[tuple[int, list[dict]]] = []
    for ln in service["lines"]:
        added = meta.line_days[ln["line_id"]]
        if added < first_day or meta.supplier.timing == "after_service":
            first.append(ln)
        else:
            later.append((added + between(rng, 1, 6), [ln]))
    return ([(first_day, first)] if first else []) + later


def _items(meta: ServiceMeta, service: dict, lines: list[dict]) -> list[tuple[str, int]]:
    """(description, incl cents) of the invoice lines the supplier writes for those price lines."""
    if meta.supplier.per_line:
        return [
            (
                f"{service['label']} - {ln['label']} x{ln['quantity']}",
                ln["quantity"] * parse(ln["unit_purchase_amount"]),
            )
            for ln in lines
        ]
    total = sum(ln["quantity"] * parse(ln["unit_purchase_amount"]) for ln in lines)
    return [(service["label"], total)]


def plan_invoices(plan: DossierPlan, end: int) -> list[Intent]:
    """Every invoice line the suppliers will send for this dossier, before day `end`."""
    if plan.confirm_day is None:
        return []
    rng = plan.rng
    mk = _Maker(rng, plan)
    for service, meta in zip(plan.doc["services"], plan.services, strict=True):
        supplier = meta.supplier
        first_day = _first_invoice_day(rng, plan, meta)
        if service["status"] == "cancelled":
            cancel = meta.cancel_day if meta.cancel_day is not None else first_day
            if first_day < cancel and meta.supplier.timing != "after_service":
                # Invoiced before the cancellation: a credit note follows (or, sometimes, never comes).
                batches = _batches(rng, meta, service, first_day)
                billed = [(d, it) for d, lines in batches if d < cancel for it in _items(meta, service, lines)]
                for d, (desc, cents) in billed:
                    mk.add(d, supplier, service, desc, cents)
                if billed and rng.random() < 0.9:
                    total = sum(c for _, (_, c) in billed)
                    mk.add(
                        cancel + between(rng, 3, 20),
                        supplier,
                        service,
                        f"Avoir annulation - {service['label']}",
                        total,
                        "credit_note",
                    )
            elif rng.random() < 0.04:
                # The supplier bills a service we cancelled: over-invoiced.
                for desc, cents in _items(meta, service, service["lines"]):
                    mk.add(first_day, supplier, service, desc, cents)
            continue
        if plan.doc["status"] not in ("confirmed", "cancelled"):
            continue
        for day, lines in _batches(rng, meta, service, first_day):
            _mess(mk, rng, day, supplier, service, _items(meta, service, lines))
    return [i for i in mk.out if i.day < end]


def _mess(
    mk: _Maker, rng: random.Random, day: int, supplier: Supplier, service: dict, items: list[tuple[str, int]]
) -> None:
    r = rng.random()
    if r < 0.74 or not items:
        for desc, cents in items:
            mk.add(day, supplier, service, desc, cents)
    elif r < 0.81:  # partial
        items = items[:-1] if len(items) > 1 else [(items[0][0], items[0][1] * between(rng, 40, 80) // 100)]
        for desc, cents in items:
            mk.add(day, supplier, service, desc, cents)
    elif r < 0.87:  # over-invoiced by an extra line
        for desc, cents in items:
            mk.add(day, supplier, service, desc, cents)
        extra = max(abs(items[0][1]) * between(rng, 5, 20) // 100, 500)
        mk.add(day, supplier, service, pick(rng, ("Taxe de séjour", "Frais de service", "Supplément")), extra)
    elif r < 0.91:  # over-invoiced, then a credit note sets it right
        extra = max(abs(items[0][1]) * between(rng, 5, 20) // 100, 500)
        mk.add(day, supplier, service, items[0][0], items[0][1] + extra)
        for desc, cents in items[1:]:
            mk.add(day, supplier, service, desc, cents)
        mk.add(day + between(rng, 5, 30), supplier, service, f"Avoir correction - {items[0][0]}", extra, "credit_note")
    elif r < 0.94:  # split over two invoices, the second one later
        half = items[0][1] // 2
        mk.add(day, supplier, service, f"{items[0][0]} (acompte)", half)
        later = day + between(rng, 10, 40)
        mk.add(later, supplier, service, f"{items[0][0]} (solde)", items[0][1] - half)
        for desc, cents in items[1:]:
            mk.add(later, supplier, service, desc, cents)
    else:  # rounding or exchange differences, within tolerance
        mk.add(day, supplier, service, items[0][0], items[0][1] + pick(rng, (-1, 1)) * between(rng, 1, 90))
        for desc, cents in items[1:]:
            mk.add(day, supplier, service, desc, cents)


@dataclass(slots=True, frozen=True)
class InvoiceDoc:
    """An invoice or credit note as a supplier sends it, whatever the format."""

    supplier: Supplier
    number: str
    kind: str
    invoice_date: str
    due_date: str
    lines: tuple[Intent, ...]  # line_number is the position + 1

    def csv_rows(self) -> list[list[str]]:
        return [
            [
                self.supplier.code,
                self.number,
                self.kind,
                self.invoice_date,
                self.due_date,
                self.supplier.currency,
                str(n),
                it.reference,
                it.description,
                fmt(it.excl),
                it.vat_rate,
                fmt(it.incl),
            ]
            for n, it in enumerate(self.lines, start=1)
        ]
