"""One dossier's whole life, planned at creation.

Everything that will happen to a dossier (confirmation, changes, cancellation) is drawn from its
own random stream when it is created, and its snapshots are serialised at once. The generator then
only has to keep the pending output lines, never live dossier objects: memory stays bounded by the
booking horizon, whatever the number of days generated.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from itertools import accumulate

from .amounts import convert, fmt, parse
from .catalog import (
    AGENCY_CODES,
    BRAND_CUM,
    BRANDS,
    CAR_SUPPLIER,
    CHANNEL_CUM,
    CHANNELS,
    CRUISE_DESTINATION,
    CRUISE_SUPPLIER,
    DESTINATION_CUM,
    DESTINATIONS,
    EUR_PER_UNIT,
    INSURANCE_SUPPLIER,
    PARTNER_CODES,
    SALE_VAT_RATE,
    SUPPLIER_BY_CODE,
    Destination,
    Supplier,
)
from .clock import Calendar
from .draw import between, pick
from .people import first_name, make_client

REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
MAIN_KINDS = ("flight", "hotel", "package", "cruise")
OPTIONAL_KINDS = ("transfer", "car", "activity", "insurance")
# Nightly or unit purchase price ranges, in the supplier's currency, in cents.
LEADS = ((3, 13), (14, 45), (46, 150), (151, 300))
LEAD_CUM = tuple(accumulate((8, 30, 43, 19)))
ADULTS_CUM = tuple(accumulate((25, 60, 10, 5)))
STATUS_CUM = tuple(accumulate((10, 15, 75)))
HOTEL_NIGHT = {"EUR": (7000, 26000), "GBP": (9000, 24000), "MAD": (60000, 250000), "USD": (15000, 40000)}


@dataclass(slots=True)
class ServiceMeta:
    """What the landing JSON does not say about a service but the other generators need."""

    supplier: Supplier
    kind: str
    start_day: int
    end_day: int
    added_day: int
    cancel_day: int | None = None
    is_fee: bool = False
    line_days: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class DossierPlan:
    seq: int
    number: str
    rng: random.Random  # the dossier's stream, continued by its payments and invoices
    doc: dict  # final state, as last sent
    services: list[ServiceMeta]  # aligned with doc["services"]
    snapshots: list[tuple[int, str]]  # (day, JSON line), one per day the dossier changed
    created_day: int
    confirm_day: int | None
    cancel_day: int | None
    departure_day: int
    schedule: list[list]  # [due_day, cents, kind, method], final
    refund: tuple[int, int] | None  # (day, cents) owed back to the client after a cancellation
    payer_name: str
    traveller_names: list[tuple[str, str]]  # (last name, first name)


class _Builder:
    """Mutable state while a dossier's life is simulated; discarded once planned."""

    def __init__(self, rng: random.Random, cal: Calendar, doc: dict) -> None:
        self.rng = rng
        self.cal = cal
        self.doc = doc
        self.meta: list[ServiceMeta] = []
        self.next_line = 1
        self.margin = Decimal(between(rng, 112, 128)) / 100
        self.currency = doc["currency"]

    def sale_of(self, purchase_cents: int, purchase_currency: str, with_margin: bool = True) -> int:
        rate = EUR_PER_UNIT[purchase_currency] / EUR_PER_UNIT[self.currency]
        if with_margin:
            rate *= self.margin
        return convert(purchase_cents, rate)

    def line(
        self,
        meta: ServiceMeta,
        service: dict,
        label: str,
        qty: int,
        purchase: int,
        day: int,
        vat_rate: str | None = None,
        with_margin: bool = True,
    ) -> None:
        line_id = f"L{self.next_line}"
        self.next_line += 1
        currency = meta.supplier.currency
        service["lines"].append(
            {
                "line_id": line_id,
                "label": label,
                "quantity": qty,
                "unit_sale_amount": fmt(self.sale_of(purchase, currency, with_margin)),
                "unit_purchase_amount": fmt(purchase),
                "purchase_currency": currency,
                "vat_rate": vat_rate if vat_rate is not None else SALE_VAT_RATE[meta.kind],
            }
        )
        meta.line_days[line_id] = day

    def service(
        self, supplier_code: str, kind: str, label: str, start: int, end: int, day: int, reference: bool = True
    ) -> tuple[ServiceMeta, dict]:
        supplier = SUPPLIER_BY_CODE[supplier_code]
        meta = ServiceMeta(supplier, kind, start, end, day)
        ref = None
        if reference and self.rng.random() < 0.88:
            if kind == "flight":
                ref = "".join(self.rng.choices(REF_ALPHABET[:24], k=6))
            else:
                ref = supplier.reference_prefix + "".join(self.rng.choices(REF_ALPHABET, k=6))
        service = {
            "service_id": f"S{len(self.meta) + 1}",
            "kind": kind,
            "supplier_code": supplier_code,
            "supplier_reference": ref,
            "label": label,
            "start_date": self.cal.iso(start),
            "end_date": self.cal.iso(end),
            "status": "confirmed",
            "lines": [],
        }
        self.meta.append(meta)
        self.doc["services"].append(service)
        return meta, service

    def totals(self) -> int:
        """Sale total of the active services, in cents."""
        total = 0
        for service in self.doc["services"]:
            if service["status"] == "confirmed":
                for ln in service["lines"]:
                    total += ln["quantity"] * parse(ln["unit_sale_amount"])
        return total


def _birth_date(departure: date, rng: random.Random, kind: str) -> str:
    years = {"adult": between(rng, 19, 78), "child": between(rng, 2, 11), "infant": 0}[kind]
    days = years * 365 + between(rng, 1, 360)
    return date.fromordinal(departure.toordinal() - days).isoformat()


def _build_services(
    b: _Builder, dest: Destination, dep: int, ret: int, day: int, adults: int, children: int, infants: int
) -> None:
    rng = b.rng
    nights = ret - dep
    pax = adults + children
    if dest.city == CRUISE_DESTINATION:
        product = "cruise"
    elif dest.package and rng.random() < 0.45:
        product = "package"
    elif not dest.flight:
        product = "rail_hotel"
    else:
        product = "flight_hotel" if rng.random() < 0.8 else "hotel"

    if product in ("flight_hotel", "cruise") and dest.flight:
        supplier = SUPPLIER_BY_CODE[dest.flight]
        meta, s = b.service(dest.flight, "flight", f"Vol {supplier.name} Paris - {dest.city}", dep, ret, day)
        base = between(rng, 45000, 120000) if supplier.currency == "USD" else between(rng, 9000, 38000)
        b.line(meta, s, "Vol aller-retour adulte", adults, base, day)
        if children:
            b.line(meta, s, "Vol aller-retour enfant", children, base * 3 // 4, day)
        if infants:
            b.line(meta, s, "Bébé sans siège", infants, base // 10, day)
        b.line(meta, s, "Taxes aéroport", pax, between(rng, 3500, 9500), day)
    if product in ("flight_hotel", "hotel", "rail_hotel"):
        supplier = SUPPLIER_BY_CODE[dest.hotel]
        lo, hi = HOTEL_NIGHT[supplier.currency]
        rooms = max(1, (pax + 1) // 2)
        meta, s = b.service(dest.hotel, "hotel", f"{supplier.name} - {dest.city}", dep, ret, day)
        b.line(meta, s, f"Chambre double - {nights} nuits", rooms, between(rng, lo, hi) // 100 * 100 * nights, day)
        if rng.random() < 0.5:
            b.line(meta, s, f"Petit-déjeuner - {nights} nuits", pax, between(rng, lo // 20, lo // 8) * nights, day)
    if product == "rail_hotel":
        meta, s = b.service(dest.transfer, "transfer", f"Train Genève - {dest.city}", dep, ret, day)
        b.line(meta, s, "Billet train 1re classe aller-retour", pax, between(rng, 9000, 18000), day)
    if product == "package":
        supplier = SUPPLIER_BY_CODE[dest.package]
        meta, s = b.service(dest.package, "package", f"Circuit {dest.city} {nights + 1} jours", dep, ret, day)
        base = between(rng, 90000, 250000) if supplier.currency == "USD" else between(rng, 80000, 220000)
        b.line(meta, s, "Forfait circuit adulte", adults, base, day)
        if children:
            b.line(meta, s, "Forfait circuit enfant", children, base * 7 // 10, day)
        if infants:
            b.line(meta, s, "Forfait bébé", infants, base // 10, day)
    if product == "cruise":
        meta, s = b.service(CRUISE_SUPPLIER, "cruise", f"Croisière {nights} nuits", dep, ret, day)
        b.line(meta, s, "Cabine balcon, pension complète", pax, between(rng, 60000, 150000), day)
        b.line(meta, s, "Taxes portuaires", pax, between(rng, 15000, 25000), day)
    if product in ("flight_hotel", "hotel") and rng.random() < 0.4:
        meta, s = b.service(dest.transfer, "transfer", f"Transferts {dest.city}", dep, ret, day)
        b.line(meta, s, "Transfert aéroport - hôtel aller-retour", 1, between(rng, 4000, 12000), day)
    if product in ("flight_hotel", "hotel") and rng.random() < 0.1:
        meta, s = b.service(CAR_SUPPLIER, "car", f"Location voiture {dest.city}", dep, ret, day)
        b.line(meta, s, f"Voiture catégorie C - {nights} jours", 1, between(rng, 3500, 7000) * nights, day)
    if rng.random() < 0.25:
        supplier = SUPPLIER_BY_CODE[dest.activity]
        act_day = dep + between(rng, 1, max(1, nights - 1))
        meta, s = b.service(dest.activity, "activity", f"Excursion journée {dest.city}", act_day, act_day, day)
        unit = between(rng, 30000, 90000) if supplier.currency == "MAD" else between(rng, 3500, 12000)
        b.line(meta, s, "Excursion avec guide", pax, unit, day)
    if rng.random() < 0.35:
        meta, s = b.service(INSURANCE_SUPPLIER, "insurance", "Assurance multirisque", dep, ret, day)
        b.line(meta, s, "Assurance annulation et assistance", pax + infants, between(rng, 2500, 9000), day)


def _schedule(b: _Builder, created: int, dep: int, method: str) -> list[list]:
    total = b.totals()
    balance_due = dep - 30
    if balance_due <= created + 1:
        return [[created, total, "balance", method]]
    deposit = total * pick(b.rng, (25, 30, 30, 35)) // 100
    if b.rng.random() < 0.05 and balance_due - created > 40:
        instalment = total * 30 // 100
        middle = created + (balance_due - created) // 2
        return [
            [created, deposit, "deposit", method],
            [middle, instalment, "instalment", method],
            [balance_due, total - deposit - instalment, "balance", method],
        ]
    return [[created, deposit, "deposit", method], [balance_due, total - deposit, "balance", method]]


def _rebalance(b: _Builder, schedule: list[list]) -> None:
    """The last entry absorbs any change of total (changes only happen before it is due)."""
    others = sum(e[1] for e in schedule[:-1])
    schedule[-1][1] = b.totals() - others


def _render_schedule(cal: Calendar, schedule: list[list]) -> list[dict]:
    return [{"due_date": cal.iso(d), "amount": fmt(c), "kind": k, "method": m} for d, c, k, m in schedule]


def _dump(doc: dict) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def plan_dossier(
    seq: int, number: str, created: int, end: int, cal: Calendar, seed: int, client_pool: int
) -> DossierPlan:
    """Draw the dossier and its whole future; only what happens before day `end` is kept."""
    rng = random.Random(f"{seed}:dossier:{seq}")
    brand = rng.choices(BRANDS, cum_weights=BRAND_CUM)[0]
    if brand.language == "en":
        language = "en" if rng.random() < 0.9 else "fr"
    else:
        language = "en" if rng.random() < 0.08 else "fr"
    channel = rng.choices(CHANNELS, cum_weights=CHANNEL_CUM)[0]
    agency = (
        pick(rng, AGENCY_CODES) if channel == "agency" else (pick(rng, PARTNER_CODES) if channel == "partner" else None)
    )
    client_id = f"CL{language[0].upper()}{rng.randrange(client_pool):07d}"
    client = {"client_id": client_id, **make_client(f"{seed}:client:{client_id}", language)}
    dest = rng.choices(DESTINATIONS, cum_weights=DESTINATION_CUM)[0]
    lead = rng.choices(LEADS, cum_weights=LEAD_CUM)[0]
    dep = created + between(rng, *lead)
    nights = pick(rng, (2, 3, 4, 5, 7, 7, 7, 10, 14))
    ret = dep + nights
    second = between(rng, 7 * 3600, 23 * 3600 - 1)
    created_at = cal.timestamp(created, second)

    adults = rng.choices((1, 2, 3, 4), cum_weights=ADULTS_CUM)[0]
    children = 0 if rng.random() < 0.7 else between(rng, 1, 3)
    infants = 1 if rng.random() < 0.07 else 0
    departure = cal.date(dep)
    travellers = []
    family = client["last_name"]
    for i in range(adults + children + infants):
        kind = "adult" if i < adults else ("child" if i < adults + children else "infant")
        if i == 0:
            first, last = client["first_name"], client["last_name"]
        else:
            first = first_name(rng, language)
            last = family if rng.random() < 0.8 else make_client(f"{seed}:companion:{seq}:{i}", language)["last_name"]
        travellers.append(
            {
                "traveller_id": f"T{i + 1}",
                "first_name": first,
                "last_name": last,
                "birth_date": _birth_date(departure, rng, kind),
                "kind": kind,
            }
        )

    statuses = ("quote", "option", "confirmed")
    status = "confirmed" if dep - created < 14 else rng.choices(statuses, cum_weights=STATUS_CUM)[0]
    doc = {
        "dossier_number": number,
        "version": 1,
        "created_at": created_at,
        "updated_at": created_at,
        "status": status,
        "channel": channel,
        "brand": brand.name,
        "agency_code": agency,
        "currency": brand.currency,
        "departure_date": cal.iso(dep),
        "return_date": cal.iso(ret),
        "destination": dest.city,
        "destination_country": dest.country,
        "client": client,
        "travellers": travellers,
        "services": [],
        "payment_schedule": [],
    }
    b = _Builder(rng, cal, doc)
    _build_services(b, dest, dep, ret, created, adults, children, infants)
    if channel == "web":
        method = "card_on_file"
    elif channel == "call_center":
        method = "card_on_file" if rng.random() < 0.6 else "manual"
    elif channel == "agency":
        method = pick(rng, ("transfer", "manual"))
    else:
        method = "transfer"
    schedule = _schedule(b, created, dep, method)
    doc["payment_schedule"] = _render_schedule(cal, schedule)
    snapshots = [(created, _dump(doc))]

    confirm_day: int | None = created if status == "confirmed" else None
    cancel_day: int | None = None
    refund: tuple[int, int] | None = None
    events: list[tuple[int, str]] = []
    if status == "quote":
        events.append((created + between(rng, 1, 5), "confirm") if rng.random() < 0.6 else (created + 7, "expire"))
    elif status == "option":
        events.append((created + between(rng, 1, 3), "confirm") if rng.random() < 0.75 else (created + 3, "expire"))
    will_confirm = status == "confirmed" or events[0][1] == "confirm"
    if will_confirm:
        first = events[0][0] + 1 if events else created + 1
        last_change = schedule[-1][0] - 1  # changes settle before the last payment falls due
        if last_change >= first:
            for kind, p in (("add_traveller", 0.04), ("cancel_service", 0.04), ("price_change", 0.06)):
                if rng.random() < p:
                    events.append((between(rng, first, last_change), kind))
        if dep - 1 >= first and rng.random() < 0.06:
            events.append((between(rng, first, dep - 1), "cancel"))
    # Stable order: by day, then the order drawn; a cancellation ends the story.
    events.sort(key=lambda e: e[0])

    pending_day: int | None = None
    for day, kind in events:
        if day >= end or cancel_day is not None:
            break
        if pending_day is not None and day != pending_day:
            snapshots.append((pending_day, _dump(doc)))
        pending_day = day
        if kind == "confirm":
            confirm_day = day
            doc["status"] = "confirmed"
            schedule[0][0] = max(schedule[0][0], day)
        elif kind == "expire":
            cancel_day = day
            doc["status"] = "cancelled"
            for s, meta in zip(doc["services"], b.meta, strict=True):
                s["status"] = "cancelled"
                meta.cancel_day = day
            schedule.clear()  # an expired quote or option owes nothing
        elif kind == "add_traveller":
            _add_traveller(b, day, departure, language, family)
            _rebalance(b, schedule)
        elif kind == "cancel_service":
            _cancel_optional_service(b, day)
            _rebalance(b, schedule)
        elif kind == "price_change":
            _price_change(b, day)
            _rebalance(b, schedule)
        else:
            cancel_day = day
            refund = _cancel(b, day, dep, schedule)
        doc["version"] += 1
        doc["updated_at"] = cal.timestamp(day, between(rng, 7 * 3600, 23 * 3600 - 1))
        doc["payment_schedule"] = _render_schedule(cal, schedule)
    if pending_day is not None:
        snapshots.append((pending_day, _dump(doc)))

    return DossierPlan(
        seq=seq,
        number=number,
        rng=rng,
        doc=doc,
        services=b.meta,
        snapshots=snapshots,
        created_day=created,
        confirm_day=confirm_day,
        cancel_day=cancel_day,
        departure_day=dep,
        schedule=schedule,
        refund=refund,
        payer_name=f"{client['first_name']} {client['last_name']}",
        traveller_names=[(t["last_name"], t["first_name"]) for t in doc["travellers"]],
    )


def _add_traveller(b: _Builder, day: int, departure: date, language: str, family: str) -> None:
    rng = b.rng
    travellers = b.doc["travellers"]
    kind = "adult" if rng.random() < 0.6 else "child"
    travellers.append(
        {
            "traveller_id": f"T{len(travellers) + 1}",
            "first_name": first_name(rng, language),
            "last_name": family,
            "birth_date": _birth_date(departure, rng, kind),
            "kind": kind,
        }
    )
    for s, meta in zip(b.doc["services"], b.meta, strict=True):
        if s["status"] != "confirmed" or not s["lines"]:
            continue
        unit = parse(s["lines"][0]["unit_purchase_amount"])
        if meta.kind == "hotel":
            b.line(meta, s, "Supplément personne supplémentaire", 1, unit * 3 // 10, day)
        elif meta.kind in ("flight", "package", "cruise", "insurance") or meta.supplier.per_line:
            b.line(meta, s, f"Voyageur supplémentaire ({kind})", 1, unit, day)


def _cancel_optional_service(b: _Builder, day: int) -> None:
    candidates = [
        i for i, m in enumerate(b.meta) if m.kind in OPTIONAL_KINDS and b.doc["services"][i]["status"] == "confirmed"
    ]
    if not candidates:
        return
    i = pick(b.rng, candidates)
    b.doc["services"][i]["status"] = "cancelled"
    b.meta[i].cancel_day = day


def _price_change(b: _Builder, day: int) -> None:
    candidates = [i for i, m in enumerate(b.meta) if m.kind in MAIN_KINDS]
    if not candidates:
        return
    i = pick(b.rng, candidates)
    s, meta = b.doc["services"][i], b.meta[i]
    base = sum(ln["quantity"] * parse(ln["unit_purchase_amount"]) for ln in s["lines"])
    delta = base * between(b.rng, 2, 8) // 100
    if meta.kind == "flight":
        b.line(meta, s, "Surcharge carburant", 1, delta, day, with_margin=False)
    elif b.rng.random() < 0.8:
        b.line(meta, s, "Régulation tarifaire fournisseur", 1, delta, day, with_margin=False)
    else:
        b.line(meta, s, "Remise fournisseur", 1, -delta, day, with_margin=False)


def _cancel(b: _Builder, day: int, dep: int, schedule: list[list]) -> tuple[int, int] | None:
    """Cancel every service; suppliers keep a fee, sent as a confirmed service of its own.

    The fee is its own service (not a line of the cancelled one) so that 'active lines' stays a
    plain filter on service status for everything downstream.
    """
    rng = b.rng
    b.doc["status"] = "cancelled"
    days_before = dep - day
    rate = 10 if days_before > 60 else (30 if days_before > 30 else 60)
    for s, meta in list(zip(b.doc["services"], b.meta, strict=True)):
        if s["status"] != "confirmed":
            continue
        s["status"] = "cancelled"
        meta.cancel_day = day
        purchase = sum(ln["quantity"] * parse(ln["unit_purchase_amount"]) for ln in s["lines"])
        if meta.kind in ("insurance",) or (meta.kind == "flight" and rng.random() < 0.5):
            fee = purchase
        elif meta.kind in ("transfer", "activity", "car") and days_before > 7:
            fee = 0
        else:
            fee = purchase * rate // 100
        if fee <= 0:
            continue
        fee_meta, fee_service = b.service(
            meta.supplier.code, meta.kind, f"Frais d'annulation - {s['label']}", day, day, day, reference=False
        )
        fee_service["supplier_reference"] = s["supplier_reference"]
        fee_meta.is_fee = True
        b.line(fee_meta, fee_service, "Frais d'annulation", 1, fee, day, vat_rate="0")
    total = b.totals()
    paid_entries = [e for e in schedule if e[0] < day]
    paid = sum(e[1] for e in paid_entries)
    schedule[:] = paid_entries
    if total > paid:
        schedule.append([day, total - paid, "balance", schedule[0][3] if schedule else "manual"])
        return None
    if paid > total:
        return (day + between(rng, 3, 12), paid - total)
    return None
