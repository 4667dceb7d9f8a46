"""An independent reading of shared/contracts/landing.md, record by record.

Test helper: it does not import the generator, so that a generator bug cannot hide itself.
Every violation names its file (relative to the landing root), its physical line (1-based; the
CSV header is line 1; for XML/PDF documents the line is 0, the whole file) and a reason kind.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import facturx
from babel import Locale
from iso4217 import Currency
from lxml import etree

CURRENCIES = frozenset(c.code for c in Currency)
NOT_COUNTRIES = {"EU", "EZ", "UN", "ZZ", "QO", "XA", "XB", "XK"}
COUNTRIES = frozenset(k for k in Locale("en").territories if len(k) == 2 and k.isalpha()) - NOT_COUNTRIES
DOSSIER_NUMBER = re.compile(r"^BK-\d{4}-\d{6,}$")
AMOUNT = re.compile(r"^-?\d+(\.\d{1,2})?$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")

BOOKING_STATUS = {"quote", "option", "confirmed", "cancelled"}
CHANNELS = {"web", "agency", "call_center", "partner"}
TRAVELLER_KINDS = {"adult", "child", "infant"}
SERVICE_KINDS = {"flight", "hotel", "transfer", "car", "insurance", "activity", "cruise", "package"}
SERVICE_STATUS = {"confirmed", "cancelled"}
SCHEDULE_KINDS = {"deposit", "balance", "instalment"}
SCHEDULE_METHODS = {"card_on_file", "transfer", "manual"}
PAYMENT_COLUMNS = [
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
PAYMENT_METHODS = {"card", "transfer", "gift_voucher", "holiday_voucher", "cheque", "cash"}
PAYMENT_STATUS = {"captured", "failed", "refunded", "chargeback"}
INVOICE_COLUMNS = [
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
INVOICE_KINDS = {"invoice", "credit_note"}
SUPPLIER_COLUMNS = [
    "supplier_code",
    "name",
    "country",
    "vat_number",
    "iban",
    "currency",
    "payment_terms_days",
    "ledger_account",
]
UBL_NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
CII_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}


@dataclass(frozen=True)
class Violation:
    source: str
    file: str
    line: int
    reason: str
    detail: str = ""


@dataclass
class InvoiceLine:
    """A valid supplier invoice line, whatever format it came in."""

    supplier_code: str
    invoice_number: str
    kind: str
    line_number: int
    reference: str
    amount_incl_tax: Decimal
    currency: str
    invoice_date: str


@dataclass
class Landing:
    """What a validation run found: violations, plus the valid records for further checks."""

    violations: list[Violation] = field(default_factory=list)
    snapshots: dict[str, list[tuple[str, dict]]] = field(default_factory=lambda: defaultdict(list))
    payments: list[dict] = field(default_factory=list)
    invoice_lines: dict[tuple[str, str, int], InvoiceLine] = field(default_factory=dict)
    suppliers: dict[str, dict] = field(default_factory=dict)


class _Record:
    """Collects the reasons one record breaks the contract."""

    def __init__(self) -> None:
        self.reasons: list[tuple[str, str]] = []

    def bad(self, reason: str, detail: str) -> None:
        self.reasons.append((reason, detail))

    def text(self, value: object, name: str, required: bool = True) -> None:
        if value is None or value == "":
            if required:
                self.bad("missing_field", name)
        elif not isinstance(value, str):
            self.bad("bad_type", name)

    def enum(self, value: object, allowed: set[str], name: str) -> None:
        if value is None or value == "":
            self.bad("missing_field", name)
        elif value not in allowed:
            self.bad("bad_enum", f"{name}={value!r}")

    def day(self, value: object, name: str) -> date | None:
        if value is None or value == "":
            self.bad("missing_field", name)
            return None
        try:
            if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise ValueError(value)
            return date.fromisoformat(value)
        except ValueError:
            self.bad("bad_date", f"{name}={value!r}")
            return None

    def timestamp(self, value: object, name: str) -> datetime | None:
        if value is None or value == "":
            self.bad("missing_field", name)
            return None
        try:
            if not isinstance(value, str) or not TIMESTAMP.match(value):
                raise ValueError(value)
            return datetime.fromisoformat(value)
        except ValueError:
            self.bad("bad_date", f"{name}={value!r}")
            return None

    def amount(self, value: object, name: str) -> Decimal | None:
        if value is None or value == "":
            self.bad("missing_field", name)
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            self.bad("bad_amount", f"{name}={value!r}")
            return None
        if isinstance(value, str) and not AMOUNT.match(value):
            self.bad("bad_amount", f"{name}={value!r}")
            return None
        number = Decimal(value)
        if number != number.quantize(Decimal("0.01")):
            self.bad("bad_amount", f"{name}={value!r}")
            return None
        return number

    def rate(self, value: object, name: str) -> Decimal | None:
        try:
            if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
                raise InvalidOperation
            rate = Decimal(value)
        except InvalidOperation:
            self.bad("bad_amount", f"{name}={value!r}")
            return None
        if not Decimal(0) <= rate < Decimal(1):
            self.bad("bad_amount", f"{name}={value!r}")
            return None
        return rate

    def currency(self, value: object, name: str) -> None:
        if value is None or value == "":
            self.bad("missing_field", name)
        elif value not in CURRENCIES:
            self.bad("unknown_currency", f"{name}={value!r}")

    def country(self, value: object, name: str) -> None:
        if value not in COUNTRIES:
            self.bad("bad_country", f"{name}={value!r}")

    def integer(self, value: object, name: str, minimum: int) -> int | None:
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad("bad_type", f"{name}={value!r}")
            return None
        if value < minimum:
            self.bad("bad_quantity" if name.endswith("quantity") else "bad_type", f"{name}={value!r}")
            return None
        return value


def validate_landing(root: Path) -> Landing:
    result = Landing()
    _suppliers(root, result)
    for path in sorted((root / "bookings").glob("*/*.jsonl")):
        _bookings(root, path, result)
    _booking_history(result)
    for path in sorted((root / "payments").glob("*/*.csv")):
        _payments(root, path, result)
    seen_invoices: dict[tuple[str, str], tuple] = {}
    for path in sorted((root / "supplier_invoices").glob("*/*")):
        if path.suffix == ".csv":
            _invoice_csv(root, path, result, seen_invoices)
        elif path.suffix in (".xml", ".pdf"):
            _invoice_document(root, path, result, seen_invoices)
        else:
            result.violations.append(Violation("supplier_invoices", _rel(root, path), 0, "unknown_file"))
    return result


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _suppliers(root: Path, result: Landing) -> None:
    path = root / "reference" / "suppliers.csv"
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if header != SUPPLIER_COLUMNS:
            result.violations.append(Violation("reference", _rel(root, path), 1, "bad_header"))
        for n, row in enumerate(reader, start=2):
            rec = _Record()
            values = dict(zip(SUPPLIER_COLUMNS, row, strict=False))
            if len(row) != len(SUPPLIER_COLUMNS):
                rec.bad("bad_row", f"{len(row)} fields")
            rec.text(values.get("supplier_code"), "supplier_code")
            rec.text(values.get("name"), "name")
            rec.country(values.get("country"), "country")
            rec.currency(values.get("currency"), "currency")
            rec.integer(values.get("payment_terms_days"), "payment_terms_days", 0)
            if not re.fullmatch(r"401\w+", values.get("ledger_account", "")):
                rec.bad("bad_format", "ledger_account")
            if values.get("supplier_code") in result.suppliers:
                rec.bad("duplicate_key", values["supplier_code"])
            _flush(result, "reference", _rel(root, path), n, rec)
            result.suppliers[values.get("supplier_code", "")] = values


def _flush(result: Landing, source: str, file: str, line: int, rec: _Record) -> bool:
    for reason, detail in rec.reasons:
        result.violations.append(Violation(source, file, line, reason, detail))
    return not rec.reasons


def _bookings(root: Path, path: Path, result: Landing) -> None:
    rel = _rel(root, path)
    folder_day = path.parent.name
    with path.open(encoding="utf-8-sig") as f:
        for n, raw in enumerate(f, start=1):
            rec = _Record()
            try:
                doc = json.loads(raw, parse_float=Decimal)
            except json.JSONDecodeError as err:
                rec.bad("not_json", str(err))
                _flush(result, "bookings", rel, n, rec)
                continue
            if not isinstance(doc, dict):
                rec.bad("not_json", "not an object")
            else:
                _check_dossier(doc, rec, result)
            if _flush(result, "bookings", rel, n, rec):
                result.snapshots[doc["dossier_number"]].append((folder_day, doc))


def _check_dossier(doc: dict, rec: _Record, result: Landing) -> None:
    number = doc.get("dossier_number")
    rec.text(number, "dossier_number")
    if isinstance(number, str) and number and not DOSSIER_NUMBER.match(number):
        rec.bad("bad_format", f"dossier_number={number!r}")
    rec.integer(doc.get("version"), "version", 1)
    created = rec.timestamp(doc.get("created_at"), "created_at")
    updated = rec.timestamp(doc.get("updated_at"), "updated_at")
    if created and updated and updated < created:
        rec.bad("bad_order", "updated_at < created_at")
    rec.enum(doc.get("status"), BOOKING_STATUS, "status")
    rec.enum(doc.get("channel"), CHANNELS, "channel")
    rec.text(doc.get("brand"), "brand")
    rec.text(doc.get("agency_code"), "agency_code", required=False)
    rec.currency(doc.get("currency"), "currency")
    dep = rec.day(doc.get("departure_date"), "departure_date")
    ret = rec.day(doc.get("return_date"), "return_date")
    if dep and ret and ret < dep:
        rec.bad("bad_order", "return_date < departure_date")
    rec.text(doc.get("destination"), "destination")
    rec.country(doc.get("destination_country"), "destination_country")
    client = doc.get("client")
    if not isinstance(client, dict):
        rec.bad("missing_field", "client")
    else:
        for name in ("client_id", "title", "first_name", "last_name", "email", "phone"):
            rec.text(client.get(name), f"client.{name}")
        if "@" not in str(client.get("email", "")):
            rec.bad("bad_format", "client.email")
        rec.enum(client.get("language"), {"fr", "en"}, "client.language")
        address = client.get("address")
        if not isinstance(address, dict):
            rec.bad("missing_field", "client.address")
        else:
            for name in ("line1", "postal_code", "city"):
                rec.text(address.get(name), f"client.address.{name}")
            rec.country(address.get("country"), "client.address.country")
    travellers = doc.get("travellers")
    if not isinstance(travellers, list) or not travellers:
        rec.bad("missing_field", "travellers")
        travellers = []
    ids = set()
    for t in travellers:
        rec.text(t.get("traveller_id"), "traveller_id")
        if t.get("traveller_id") in ids:
            rec.bad("duplicate_key", f"traveller_id={t.get('traveller_id')}")
        ids.add(t.get("traveller_id"))
        rec.text(t.get("first_name"), "traveller.first_name")
        rec.text(t.get("last_name"), "traveller.last_name")
        born = rec.day(t.get("birth_date"), "traveller.birth_date")
        if born and dep and born > dep:
            rec.bad("bad_order", "birth_date after departure")
        rec.enum(t.get("kind"), TRAVELLER_KINDS, "traveller.kind")
    services = doc.get("services")
    if not isinstance(services, list):
        rec.bad("missing_field", "services")
        services = []
    service_ids, line_ids = set(), set()
    for s in services:
        sid = s.get("service_id")
        rec.text(sid, "service_id")
        if sid in service_ids:
            rec.bad("duplicate_key", f"service_id={sid}")
        service_ids.add(sid)
        rec.enum(s.get("kind"), SERVICE_KINDS, "service.kind")
        if s.get("supplier_code") not in result.suppliers:
            rec.bad("unknown_supplier", f"supplier_code={s.get('supplier_code')!r}")
        rec.text(s.get("supplier_reference"), "supplier_reference", required=False)
        rec.text(s.get("label"), "service.label")
        start = rec.day(s.get("start_date"), "service.start_date")
        end = rec.day(s.get("end_date"), "service.end_date")
        if start and end and end < start:
            rec.bad("bad_order", "service end_date < start_date")
        rec.enum(s.get("status"), SERVICE_STATUS, "service.status")
        lines = s.get("lines")
        if not isinstance(lines, list) or not lines:
            rec.bad("missing_field", "service.lines")
            lines = []
        supplier_currency = result.suppliers.get(s.get("supplier_code"), {}).get("currency")
        for ln in lines:
            lid = ln.get("line_id")
            rec.text(lid, "line_id")
            if lid in line_ids:
                rec.bad("duplicate_key", f"line_id={lid}")
            line_ids.add(lid)
            rec.text(ln.get("label"), "line.label")
            rec.integer(ln.get("quantity"), "line.quantity", 1)
            rec.amount(ln.get("unit_sale_amount"), "unit_sale_amount")
            rec.amount(ln.get("unit_purchase_amount"), "unit_purchase_amount")
            rec.currency(ln.get("purchase_currency"), "purchase_currency")
            if (
                supplier_currency
                and ln.get("purchase_currency") in CURRENCIES
                and ln.get("purchase_currency") != supplier_currency
            ):
                rec.bad("currency_mismatch", f"line {lid} purchase_currency")
            rec.rate(ln.get("vat_rate"), "line.vat_rate")
    schedule = doc.get("payment_schedule")
    if not isinstance(schedule, list):
        rec.bad("missing_field", "payment_schedule")
        schedule = []
    for entry in schedule:
        rec.day(entry.get("due_date"), "payment_schedule.due_date")
        rec.amount(entry.get("amount"), "payment_schedule.amount")
        rec.enum(entry.get("kind"), SCHEDULE_KINDS, "payment_schedule.kind")
        rec.enum(entry.get("method"), SCHEDULE_METHODS, "payment_schedule.method")


def _booking_history(result: Landing) -> None:
    """(dossier, version) is unique, and later days carry higher versions and later updates."""
    for number, history in result.snapshots.items():
        previous: tuple[str, int, datetime] | None = None
        for day, doc in history:  # files are read in day order
            stamp = datetime.fromisoformat(doc["updated_at"])
            if stamp.date().isoformat() != day:
                result.violations.append(Violation("bookings", f"bookings/{day}", 0, "wrong_day", number))
            if previous is not None and (doc["version"] <= previous[1] or stamp <= previous[2]):
                result.violations.append(
                    Violation("bookings", f"bookings/{day}", 0, "duplicate_key", f"{number} v{doc['version']}")
                )
            previous = (day, doc["version"], stamp)


def _payments(root: Path, path: Path, result: Landing) -> None:
    rel = _rel(root, path)
    seen = {p["payment_id"] for p in result.payments}
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        if next(reader) != PAYMENT_COLUMNS:
            result.violations.append(Violation("payments", rel, 1, "bad_header"))
        for n, row in enumerate(reader, start=2):
            rec = _Record()
            if len(row) != len(PAYMENT_COLUMNS):
                rec.bad("bad_row", f"{len(row)} fields")
            p = dict(zip(PAYMENT_COLUMNS, row, strict=False))
            rec.text(p.get("payment_id"), "payment_id")
            if p.get("payment_id") in seen:
                rec.bad("duplicate_key", p["payment_id"])
            number = p.get("dossier_number", "")
            if number and not DOSSIER_NUMBER.match(number):
                rec.bad("bad_format", f"dossier_number={number!r}")
            received = rec.timestamp(p.get("received_at"), "received_at")
            if received and received.date().isoformat() != path.parent.name:
                rec.bad("wrong_day", "received_at not in the day folder")
            rec.enum(p.get("method"), PAYMENT_METHODS, "method")
            amount = rec.amount(p.get("amount"), "amount")
            rec.currency(p.get("currency"), "currency")
            rec.enum(p.get("status"), PAYMENT_STATUS, "status")
            if amount is not None and p.get("status") in PAYMENT_STATUS:
                negative = p["status"] in ("refunded", "chargeback")
                if (amount < 0) != negative or amount == 0:
                    rec.bad("bad_sign", f"{p['status']} {amount}")
            rec.text(p.get("provider"), "provider")
            rec.text(p.get("provider_reference"), "provider_reference")
            rec.text(p.get("payer_name"), "payer_name")
            if _flush(result, "payments", rel, n, rec):
                seen.add(p["payment_id"])
                result.payments.append(p)


def _invoice_csv(root: Path, path: Path, result: Landing, seen: dict[tuple[str, str], tuple]) -> None:
    rel = _rel(root, path)
    invoices: dict[tuple[str, str], list[tuple[int, list[str]]]] = defaultdict(list)
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        if next(reader) != INVOICE_COLUMNS:
            result.violations.append(Violation("supplier_invoices", rel, 1, "bad_header"))
        for n, row in enumerate(reader, start=2):
            rec = _Record()
            if len(row) != len(INVOICE_COLUMNS):
                rec.bad("bad_row", f"{len(row)} fields")
            r = dict(zip(INVOICE_COLUMNS, row, strict=False))
            supplier = result.suppliers.get(r.get("supplier_code", ""))
            if supplier is None:
                rec.bad("unknown_supplier", r.get("supplier_code", ""))
            rec.text(r.get("invoice_number"), "invoice_number")
            rec.enum(r.get("kind"), INVOICE_KINDS, "kind")
            issued = rec.day(r.get("invoice_date"), "invoice_date")
            due = rec.day(r.get("due_date"), "due_date")
            if issued and due and due < issued:
                rec.bad("bad_order", "due_date < invoice_date")
            if issued and issued.isoformat() > path.parent.name:
                rec.bad("bad_order", "invoice dated after its delivery")
            rec.currency(r.get("currency"), "currency")
            rec.integer(r.get("line_number"), "line_number", 1)
            rec.text(r.get("reference"), "reference", required=False)
            rec.text(r.get("description"), "description")
            excl = rec.amount(r.get("amount_excl_tax"), "amount_excl_tax")
            rate = rec.rate(r.get("vat_rate"), "vat_rate")
            incl = rec.amount(r.get("amount_incl_tax"), "amount_incl_tax")
            if (
                excl is not None
                and rate is not None
                and incl is not None
                and abs(excl * (1 + rate) - incl) > Decimal("0.01")
            ):
                rec.bad("amount_mismatch", f"{excl} * (1 + {rate}) != {incl}")
            if _flush(result, "supplier_invoices", rel, n, rec):
                invoices[(r["supplier_code"], r["invoice_number"])].append((n, row))
    for key, rows in invoices.items():
        first = rows[0][1]
        numbers = [int(row[6]) for _, row in rows]
        header_fields = {(row[2], row[3], row[4], row[5]) for _, row in rows}
        if len(set(numbers)) != len(numbers) or len(header_fields) != 1:
            result.violations.append(Violation("supplier_invoices", rel, rows[0][0], "conflict", str(key)))
            continue
        content = tuple(tuple(row) for _, row in rows)
        if not _same_invoice(result, seen, key, content, rel, rows[0][0]):
            continue
        for _, row in rows:
            result.invoice_lines[(key[0], key[1], int(row[6]))] = InvoiceLine(
                key[0], key[1], first[2], int(row[6]), row[7], Decimal(row[11]), row[5], row[3]
            )


def _same_invoice(result: Landing, seen: dict, key: tuple[str, str], content: tuple, rel: str, line: int) -> bool:
    """A re-sent invoice must be identical to the first delivery; True when it is new."""
    if key in seen:
        if seen[key] != content:
            result.violations.append(Violation("supplier_invoices", rel, line, "conflict", str(key)))
        return False
    seen[key] = content
    return True


def _supplier_by_name(result: Landing, ident: str, name: str) -> str | None:
    if ident in result.suppliers:
        return ident
    return next((code for code, s in result.suppliers.items() if s["name"] == name), None)


def _invoice_document(root: Path, path: Path, result: Landing, seen: dict[tuple[str, str], tuple]) -> None:
    rel = _rel(root, path)
    data = path.read_bytes()
    try:
        if path.suffix == ".pdf":
            _, xml = facturx.get_facturx_xml_from_pdf(data, check_xsd=False)
            facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
            lines = _cii_lines(etree.fromstring(xml))
        else:
            tree = etree.fromstring(data)
            credit = etree.QName(tree).localname == "CreditNote"
            facturx.xml_check_xsd(data, flavor="ubl-2.1-creditnote" if credit else "ubl-2.1-invoice")
            lines = _ubl_lines(tree, credit)
    except Exception as err:  # any parse or schema failure rejects the whole document
        result.violations.append(Violation("supplier_invoices", rel, 0, "bad_document", str(err)[:200]))
        return
    header, rows = lines
    supplier = _supplier_by_name(result, header["ident"], header["name"])
    if supplier is None:
        result.violations.append(Violation("supplier_invoices", rel, 0, "unknown_supplier", header["name"]))
        return
    if header["currency"] not in CURRENCIES:
        result.violations.append(Violation("supplier_invoices", rel, 0, "unknown_currency", header["currency"]))
        return
    total = sum((r[2] for r in rows), Decimal(0))
    if total != header["total_excl"]:
        result.violations.append(Violation("supplier_invoices", rel, 0, "amount_mismatch", "line total"))
        return
    key = (supplier, header["number"])
    if not _same_invoice(result, seen, key, (data,), rel, 0):
        return
    for n, reference, excl, rate in rows:
        # Structured invoices carry net amounts; incl is derived, rounding half up.
        incl = (excl * (1 + rate)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        result.invoice_lines[(supplier, header["number"], n)] = InvoiceLine(
            supplier, header["number"], header["kind"], n, reference, incl, header["currency"], header["date"]
        )


def _ubl_lines(tree: etree._Element, credit: bool) -> tuple[dict, list]:
    ns = UBL_NS
    party = tree.find("cac:AccountingSupplierParty/cac:Party", ns)
    header = {
        "number": tree.findtext("cbc:ID", namespaces=ns),
        "kind": "credit_note" if credit else "invoice",
        "date": tree.findtext("cbc:IssueDate", namespaces=ns),
        "currency": tree.findtext("cbc:DocumentCurrencyCode", namespaces=ns),
        "ident": party.findtext("cac:PartyIdentification/cbc:ID", default="", namespaces=ns),
        "name": party.findtext("cac:PartyName/cbc:Name", default="", namespaces=ns),
        "total_excl": Decimal(tree.findtext("cac:LegalMonetaryTotal/cbc:LineExtensionAmount", namespaces=ns)),
    }
    buyer_reference = tree.findtext("cbc:BuyerReference", default="", namespaces=ns)
    rows = []
    for line in tree.findall("cac:CreditNoteLine" if credit else "cac:InvoiceLine", ns):
        reference = (
            line.findtext("cac:OrderLineReference/cbc:LineID", default="", namespaces=ns)
            or line.findtext("cac:DocumentReference/cbc:ID", default="", namespaces=ns)
            or line.findtext("cbc:Note", default="", namespaces=ns)
            or buyer_reference
        )
        rows.append(
            (
                int(line.findtext("cbc:ID", namespaces=ns)),
                reference,
                Decimal(line.findtext("cbc:LineExtensionAmount", namespaces=ns)),
                Decimal(line.findtext("cac:Item/cac:ClassifiedTaxCategory/cbc:Percent", namespaces=ns)) / 100,
            )
        )
    return header, rows


def _cii_lines(tree: etree._Element) -> tuple[dict, list]:
    ns = CII_NS
    agreement = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
    settlement = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
    header = {
        "number": tree.findtext("rsm:ExchangedDocument/ram:ID", namespaces=ns),
        "kind": "credit_note"
        if tree.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=ns) == "381"
        else "invoice",
        "date": _cii_date(tree.findtext("rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString", namespaces=ns)),
        "currency": tree.findtext(f"{settlement}/ram:InvoiceCurrencyCode", namespaces=ns),
        "ident": tree.findtext(f"{agreement}/ram:SellerTradeParty/ram:ID", default="", namespaces=ns),
        "name": tree.findtext(f"{agreement}/ram:SellerTradeParty/ram:Name", default="", namespaces=ns),
        "total_excl": Decimal(
            tree.findtext(
                f"{settlement}/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:LineTotalAmount", namespaces=ns
            )
        ),
    }
    buyer_reference = tree.findtext(f"{agreement}/ram:BuyerReference", default="", namespaces=ns)
    rows = []
    for item in tree.findall("rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem", ns):
        settle = item.find("ram:SpecifiedLineTradeSettlement", ns)
        reference = (
            item.findtext(
                "ram:SpecifiedLineTradeAgreement/ram:BuyerOrderReferencedDocument/ram:LineID", default="", namespaces=ns
            )
            or settle.findtext("ram:AdditionalReferencedDocument/ram:IssuerAssignedID", default="", namespaces=ns)
            or item.findtext(
                "ram:AssociatedDocumentLineDocument/ram:IncludedNote/ram:Content", default="", namespaces=ns
            )
            or buyer_reference
        )
        rows.append(
            (
                int(item.findtext("ram:AssociatedDocumentLineDocument/ram:LineID", namespaces=ns)),
                reference,
                Decimal(
                    settle.findtext(
                        "ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount", namespaces=ns
                    )
                ),
                Decimal(settle.findtext("ram:ApplicableTradeTax/ram:RateApplicablePercent", namespaces=ns)) / 100,
            )
        )
    return header, rows


def _cii_date(text: str) -> str:
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}"
