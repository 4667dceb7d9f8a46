"""Money movements of a planned dossier: deposits, balances, failures, refunds, chargebacks."""

from __future__ import annotations

import random
from itertools import accumulate

from .amounts import fmt
from .catalog import BRANDS
from .clock import Calendar
from .dossiers import DossierPlan
from .draw import between, pick
from .writer import csv_line

COLUMNS = [
    "payment_id",
    "dossier_number",
    "received_at",
    "method",
    "amount",
    "currency",
    "status",
    "provider",
    "provider_reference",
    "payer_name",
]
PROVIDER_OF_BRAND = {b.name: b.provider for b in BRANDS}
MANUAL_METHODS = ("cheque", "cash", "holiday_voucher", "gift_voucher", "card")
MANUAL_CUM = tuple(accumulate((30, 10, 30, 10, 20)))
DIGITS = "0123456789"
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# A payment waiting to be written: (day, second of day, payment_id, CSV line).
Pending = tuple[int, int, str, str]


def _provider(method: str, brand: str) -> str:
    if method == "card":
        return PROVIDER_OF_BRAND[brand]
    if method in ("holiday_voucher", "gift_voucher"):
        return "voucher_partner"
    if method == "cash":
        return "agency_till"
    return "bank"


def _reference(rng: random.Random, provider: str, cal: Calendar, day: int) -> str:
    if provider == "adyen":
        return "".join(rng.choices(DIGITS, k=16))
    if provider == "stripe":
        return "ch_" + "".join(rng.choices(ALNUM, k=24))
    if provider == "voucher_partner":
        return "ANCV-" + "".join(rng.choices(DIGITS, k=10))
    if provider == "agency_till":
        return "CAISSE-" + "".join(rng.choices(DIGITS, k=6))
    return f"VIR{cal.compact(day)}{''.join(rng.choices(DIGITS, k=8))}"


def plan_payments(plan: DossierPlan, cal: Calendar, end: int) -> list[Pending]:
    """Every movement of the dossier that happens before day `end`."""
    if plan.confirm_day is None:
        return []
    rng = plan.rng
    doc = plan.doc
    currency = doc["currency"]
    brand = doc["brand"]
    out: list[Pending] = []
    counter = 0

    def emit(day: int, second: int, method: str, cents: int, status: str, provider: str, payer: str) -> None:
        nonlocal counter
        if day >= end:
            return
        counter += 1
        pid = f"PAY-{plan.seq:08d}-{counter:02d}"
        out.append(
            (
                day,
                second,
                pid,
                csv_line(
                    [
                        pid,
                        plan.number,
                        cal.timestamp(day, second),
                        method,
                        fmt(cents),
                        currency,
                        status,
                        provider,
                        _reference(rng, provider, cal, day),
                        payer,
                    ]
                ),
            )
        )

    payer = plan.payer_name
    card_payments: list[tuple[int, int, str]] = []
    first_method = "card"
    for i, (due, cents, _kind, sched_method) in enumerate(plan.schedule):
        if cents <= 0:
            continue
        if sched_method == "card_on_file":
            method = "card"
            day = max(due, plan.confirm_day)
        elif sched_method == "transfer":
            method = "transfer"
            day = max(due + between(rng, -3, 4), plan.confirm_day, plan.created_day)
        else:
            method = rng.choices(MANUAL_METHODS, cum_weights=MANUAL_CUM)[0]
            day = max(due + between(rng, -2, 2), plan.confirm_day, plan.created_day)
        if i == 0:
            first_method = method
        provider = _provider(method, brand)
        second = between(rng, 6 * 3600, 21 * 3600)
        name = payer.upper() if method == "transfer" and rng.random() < 0.5 else payer
        if method == "card" and rng.random() < 0.04:
            emit(day, second, method, cents, "failed", provider, name)
            day, second = (day, min(second + 3600, 86399)) if rng.random() < 0.5 else (day + 1, second)
        emit(day, second, method, cents, "captured", provider, name)
        if method == "card":
            card_payments.append((day, cents, provider))

    if plan.refund is not None:
        day, cents = plan.refund
        method = "card" if first_method == "card" else "transfer"
        emit(day, between(rng, 8 * 3600, 18 * 3600), method, -cents, "refunded", _provider(method, brand), payer)
    for day, cents, provider in card_payments:
        if rng.random() < 0.004:
            emit(day + between(rng, 20, 60), between(rng, 0, 86399), "card", -cents, "chargeback", provider, payer)
    return out


def unattributed_transfers(rng: random.Random, cal: Calendar, day: int) -> list[Pending]:
    """Bank credits nobody could tie to a dossier: the payer wrote no usable reference."""
    out: list[Pending] = []
    for i in range(pick(rng, (0, 0, 1, 1, 2))):
        second = between(rng, 8 * 3600, 18 * 3600)
        cents = between(rng, 50, 3000) * 100
        payer = pick(rng, ("M OU MME DURAND", "SARL LES VOYAGEURS", "J. MARTIN", "CE ENTREPRISE", "DUPONT"))
        pid = f"BNK-{cal.compact(day)}-{i + 1:03d}"
        out.append(
            (
                day,
                second,
                pid,
                csv_line(
                    [
                        pid,
                        "",
                        cal.timestamp(day, second),
                        "transfer",
                        fmt(cents),
                        "EUR",
                        "captured",
                        "bank",
                        _reference(rng, "bank", cal, day),
                        payer,
                    ]
                ),
            )
        )
    return out
