"""The supplier invoice contract (landing.md), for lines from CSV, UBL and Factur-X alike.

Parsers turn their format into `SourceLine`s: the CSV columns as text, so every format is
checked by the same rules. `assemble` checks the lines of one file and groups them into
invoices. An invoice is a whole: when one of its lines breaks the contract, every line of it
is rejected (the bad ones with their own reason, the others saying why), so no half invoice
is ever loaded and the supplier re-sends it complete.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from backoffice.ingest.field_checks import Fields
from backoffice.ingest.ledger import Rejection

COLUMNS = (
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
)
KINDS = ("invoice", "credit_note")
HEADER = ("kind", "invoice_date", "due_date", "currency")  # the same on every line of an invoice
TOLERANCE = Decimal("0.01")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class SourceLine:
    line: int  # CSV: the record's line; XML and PDF: the invoice line's position in the document
    fields: dict[str, str | None]  # keyed by COLUMNS


@dataclass(frozen=True)
class InvoiceLine:
    supplier_code: str
    invoice_number: str
    kind: str
    invoice_date: date
    due_date: date | None
    currency: str
    line_number: int
    reference: str | None
    description: str | None
    amount_excl_tax: Decimal
    vat_rate: Decimal
    amount_incl_tax: Decimal
    file: str
    line: int

    def row(self) -> tuple[object, ...]:
        """In COLUMNS order, for COPY."""
        return tuple(getattr(self, column) for column in COLUMNS)


@dataclass(frozen=True)
class Invoice:
    lines: tuple[InvoiceLine, ...]
    sha256: str  # of the content, whatever the format or file it came in


def incl_from_excl(excl: str | None, rate: str | None) -> str | None:
    """Line amount tax included, for formats that carry only the net amount and the rate."""
    try:
        value = Decimal(excl or "") * (1 + Decimal(rate or ""))
    except ArithmeticError:
        return excl  # the checks report the unreadable amount or rate themselves
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP)) if value.is_finite() else excl


def percent_to_rate(percent: str | None) -> str | None:
    """'20' -> '0.2', '5.5' -> '0.055'; anything else is passed on for the checks to report."""
    try:
        value = Decimal((percent or "").strip()) / 100
    except ArithmeticError:
        return percent
    return f"{value.normalize():f}" if value.is_finite() else percent


def assemble(
    file: str, lines: Iterable[SourceLine], suppliers: frozenset[str]
) -> tuple[list[Invoice], list[Rejection]]:
    """The complete invoices of one file, and a rejection for every line that cannot load."""
    groups: dict[tuple[str, str], list[tuple[SourceLine, InvoiceLine | None, list[str]]]] = {}
    rejections: list[Rejection] = []
    for source in lines:
        record, problems = _check(file, source, suppliers)
        supplier = (source.fields.get("supplier_code") or "").strip()
        number = (source.fields.get("invoice_number") or "").strip()
        if not supplier or not number:
            # No invoice to belong to: rejected on its own.
            rejections.append((file, source.line, _key(supplier, number, source), "; ".join(problems)))
            continue
        groups.setdefault((supplier, number), []).append((source, record, problems))
    invoices = []
    for (supplier, number), members in groups.items():
        problems_of = {id(source): problems for source, _, problems in members}
        _check_invoice(supplier, number, members, problems_of)
        bad = [source.line for source, _, _ in members if problems_of[id(source)]]
        if not bad:
            good = tuple(sorted((r for _, r, _ in members if r is not None), key=lambda r: r.line_number))
            invoices.append(Invoice(good, _sha256(good)))
            continue
        for source, _, _ in members:
            reason = "; ".join(problems_of[id(source)]) or (
                f"invoice {number} of supplier {supplier} is rejected whole: "
                f"line(s) {', '.join(map(str, bad))} of {file} break the contract"
            )
            rejections.append((file, source.line, _key(supplier, number, source), reason))
    return invoices, rejections


def _key(supplier: str, number: str, source: SourceLine) -> str:
    return f"{supplier}/{number}/{(source.fields.get('line_number') or '').strip()}"


def _check(file: str, source: SourceLine, suppliers: frozenset[str]) -> tuple[InvoiceLine | None, list[str]]:
    f = Fields(source.fields)
    supplier = f.text("supplier_code")
    if supplier is not None and supplier not in suppliers:
        f.fail("supplier_code", f"{supplier!r} is not a known supplier (reference/suppliers.csv)")
    values = {
        "supplier_code": supplier,
        "invoice_number": f.text("invoice_number"),
        "kind": f.enum("kind", KINDS),
        "invoice_date": f.day("invoice_date"),
        "due_date": f.day("due_date", required=False),
        "currency": f.currency("currency"),
        "line_number": f.positive_int("line_number"),
        "reference": f.text("reference", required=False),
        "description": f.text("description", required=False),
        "amount_excl_tax": f.amount("amount_excl_tax"),
        "vat_rate": f.rate("vat_rate"),
        "amount_incl_tax": f.amount("amount_incl_tax"),
    }
    excl, rate, incl = values["amount_excl_tax"], values["vat_rate"], values["amount_incl_tax"]
    if excl is not None and rate is not None and incl is not None:
        expected = excl * (1 + rate)
        if abs(incl - expected) > TOLERANCE:
            f.fail(
                "amount_incl_tax",
                f"{incl} is not amount_excl_tax {excl} x (1 + vat_rate {rate.normalize():f}) = "
                f"{expected.quantize(CENT, rounding=ROUND_HALF_UP)} (within {TOLERANCE})",
            )
    if values["kind"] == "credit_note" and incl is not None and incl < 0:
        f.fail("amount_incl_tax", f"{incl} is negative: a credit note's amounts are positive, its kind gives the sign")
    if values["invoice_date"] and values["due_date"] and values["due_date"] < values["invoice_date"]:
        f.fail("due_date", f"{values['due_date']} is before invoice_date {values['invoice_date']}")
    if f.problems:
        return None, f.problems
    return InvoiceLine(**values, file=file, line=source.line), []  # type: ignore[arg-type]


def _check_invoice(
    supplier: str,
    number: str,
    members: list[tuple[SourceLine, InvoiceLine | None, list[str]]],
    problems_of: dict[int, list[str]],
) -> None:
    """What only the invoice as a whole can break: one header, distinct line numbers."""
    records = [(source, r) for source, r, _ in members if r is not None]
    for column in HEADER:
        values = sorted({str(getattr(r, column)) for _, r in records})
        if len(values) > 1:
            for source, _ in records:
                problems_of[id(source)].append(
                    f"{column}: the lines of invoice {number} of supplier {supplier} disagree ({', '.join(values)})"
                )
    seen: dict[int, int] = {}
    for source, r in records:
        if r.line_number in seen:
            problems_of[id(source)].append(
                f"line_number: {r.line_number} is used twice in invoice {number} (also at line {seen[r.line_number]})"
            )
        seen.setdefault(r.line_number, source.line)


def _sha256(lines: tuple[InvoiceLine, ...]) -> str:
    """Content only (not file nor position), so the same invoice re-sent in any format hashes alike."""
    head = lines[0]
    content = [
        head.kind,
        str(head.invoice_date),
        str(head.due_date),
        head.currency,
        [
            [r.line_number, r.reference, r.description, str(r.amount_excl_tax), str(r.vat_rate), str(r.amount_incl_tax)]
            for r in lines
        ],
    ]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()
