"""Records that break the landing contract on purpose, one per source and day.

Each is an extra record (a 'ghost' dossier, payment or invoice) so that rejecting it leaves the
true state of every real dossier untouched; the ground truth lists each with its file, line and
reason kind. Kinds rotate with the day so that even a short run holds every kind.
"""

from __future__ import annotations

import json
import random

from .amounts import fmt
from .draw import between

BOOKING_KINDS = ("not_json", "missing_field", "bad_date", "bad_quantity", "unknown_currency")
PAYMENT_KINDS = ("bad_date", "unknown_currency", "bad_enum", "bad_amount")
INVOICE_KINDS = ("amount_mismatch", "bad_date", "unknown_currency", "missing_field")


def booking(template: str, ghost_number: str, day: int) -> tuple[str, str, str]:
    """(JSON line, reason kind, record key) from a real snapshot of the day."""
    kind = BOOKING_KINDS[day % len(BOOKING_KINDS)]
    doc = json.loads(template)
    doc["dossier_number"] = ghost_number
    doc["version"] = 1
    if kind == "not_json":
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        return text[: len(text) // 2], kind, ghost_number
    if kind == "missing_field":
        del doc["dossier_number"]
        ghost_number = ""
    elif kind == "bad_date":
        doc["departure_date"] = doc["departure_date"][:4] + "-02-30"
    elif kind == "bad_quantity":
        doc["services"][0]["lines"][0]["quantity"] = -1 if day % 2 else 0
    else:
        doc["currency"] = "EURO"
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")), kind, ghost_number


def payment(template: list[str], payment_id: str, day: int) -> tuple[list[str], str, str]:
    kind = PAYMENT_KINDS[day % len(PAYMENT_KINDS)]
    row = list(template)
    row[0] = payment_id
    if kind == "bad_date":
        row[2] = "31/12/2026 10:00"
    elif kind == "unknown_currency":
        row[5] = "EURO"
    elif kind == "bad_enum":
        row[3] = "bitcoin"
    else:
        row[4] = row[4].replace(".", ",")  # a decimal comma, as a French spreadsheet writes it
    return row, kind, payment_id


def invoice_row(
    rng: random.Random, supplier_code: str, currency: str, number: str, invoice_date: str, due_date: str, day: int
) -> tuple[list[str], str, str]:
    kind = INVOICE_KINDS[day % len(INVOICE_KINDS)]
    excl = between(rng, 2000, 90000)
    row = [
        supplier_code,
        number,
        "invoice",
        invoice_date,
        due_date,
        currency,
        "1",
        "",
        "Prestation diverse",
        fmt(excl),
        "0",
        fmt(excl),
    ]
    if kind == "amount_mismatch":
        row[10] = "0.20"
    elif kind == "bad_date":
        row[3] = invoice_date[:4] + "-13-01"
    elif kind == "unknown_currency":
        row[5] = "XEU"
    else:
        row[1] = ""
    return row, kind, f"{supplier_code}/{row[1]}/1"
