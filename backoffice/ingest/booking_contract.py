"""The bookings contract (landing.md), checked one snapshot at a time.

`parse_snapshot` turns one JSONL line into a `Snapshot` whose `doc` is flat and normalised
(dates ISO, timestamps UTC, amounts as 2-decimal strings) with keys named like the app.*
columns, so the merge can read it with `jsonb_populate_record`. Every breach is collected,
not only the first, and named by its path (`services[1].lines[0].quantity`), so one rejection
tells the sender everything to fix on that line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from backoffice.domain.errors import InvalidInput
from backoffice.domain.money import CURRENCIES, parse_amount
from backoffice.ingest.countries import COUNTRIES

STATUSES = ("quote", "option", "confirmed", "cancelled")
CHANNELS = ("web", "agency", "call_center", "partner")
LANGUAGES = ("fr", "en")
TRAVELLER_KINDS = ("adult", "child", "infant")
SERVICE_KINDS = ("flight", "hotel", "transfer", "car", "insurance", "activity", "cruise", "package")
SERVICE_STATUSES = ("confirmed", "cancelled")
SCHEDULE_KINDS = ("deposit", "balance", "instalment")
SCHEDULE_METHODS = ("card_on_file", "transfer", "manual")
MAX_REASON = 1000
# Values already written as the checks would write them back (no sign, no leading zero, no space,
# two decimals, under 1e12: what parse_amount accepts and returns unchanged; a rate below 1 with at
# most 4 decimals): kept as they are, without the Decimal round trip that gives the same string.
_PLAIN_AMOUNT = re.compile(r"(?:0|[1-9][0-9]{0,11})\.[0-9][0-9]")
_PLAIN_RATE = re.compile(r"0(?:\.[0-9]{1,4})?")


class ContractBreach(Exception):
    """A line that cannot load; `reason` names every field at fault."""

    def __init__(self, reason: str, record_key: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.record_key = record_key


class _Inexact(Exception):
    """orjson read a number as a float where the checker looks at it: redo the line exactly."""


@dataclass(frozen=True)
class Snapshot:
    dossier_number: str
    version: int
    updated_at: datetime
    doc: dict[str, Any]


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def _fast_load(line: str) -> dict[str, Any] | None:
    """orjson for the common line (a few times faster than the stdlib); None to take the exact path.

    A line without a \\u escape holds no NUL and no lone surrogate (orjson refuses raw control
    characters; only an escape can write the others), so `_check_storable` has nothing to find.
    orjson reads a fraction, or an integer past 64 bits, as a float where the stdlib path keeps
    it exact: the checker raises _Inexact when it meets one, and the line is read again exactly.
    """
    if "\\u" in line:
        return None
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None  # the stdlib parser words the error as the contract's messages expect
    return record if isinstance(record, dict) else None


def parse_snapshot(line: str) -> Snapshot:
    """Parse and check one line; raise ContractBreach with every problem found."""
    record = _fast_load(line)
    checker = _Checker()
    doc = None
    if record is not None:
        try:
            doc = checker.dossier(record)
        except _Inexact:
            checker = _Checker()
    if doc is None:
        record = _exact_load(line)
        _check_storable(record, "", checker)
        doc = checker.dossier(record)
    key = record.get("dossier_number") if isinstance(record.get("dossier_number"), str) else None
    if checker.errors:
        reason = "; ".join(checker.errors)
        if len(reason) > MAX_REASON:
            reason = reason[: MAX_REASON - 20] + f"... ({len(checker.errors)} problems)"
        raise ContractBreach(reason, key)
    return Snapshot(
        dossier_number=doc["dossier_number"],
        version=doc["platform_version"],
        updated_at=datetime.fromisoformat(doc["updated_at"]),
        doc=doc,
    )


def _exact_load(line: str) -> dict[str, Any]:
    try:
        # Decimal keeps a JSON number exact, so "12.345" is caught rather than rounded.
        record = json.loads(line, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ContractBreach(f"not valid JSON: {exc.msg} at column {exc.colno}", None) from None
    except (ValueError, RecursionError) as exc:
        raise ContractBreach(f"not valid JSON: {exc}", None) from None
    if not isinstance(record, dict):
        raise ContractBreach(f"expected a JSON object, got {type(record).__name__}", None)
    return record


def _check_storable(value: object, path: str, checker: _Checker) -> None:
    """PostgreSQL cannot store a NUL character or a lone surrogate, even in fields we do not read."""
    if isinstance(value, str):
        if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
            checker.fail(path or "record", "holds a NUL character or an invalid unicode escape")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(key, path or "record", checker)
            _check_storable(item, f"{path}.{key}" if path else key, checker)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_storable(item, f"{path}[{index}]", checker)


def _exact(value: object) -> None:
    if isinstance(value, float):
        raise _Inexact


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, field: str, problem: str) -> None:
        self.errors.append(f"{field}: {problem}")

    # ---------------------------------------------------------------- scalars
    def text(self, obj: dict[str, Any], key: str, path: str, required: bool = True) -> str | None:
        value = obj.get(key)
        if value.__class__ is str and value and not value.isspace():
            return value  # the common case first, without strip() allocating a copy
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(path, "is required" if value is None else "is empty")
            return None
        if not isinstance(value, str):
            _exact(value)
            self.fail(path, f"must be a string, got {json.dumps(value, default=str)}")
            return None
        return value

    def enum(self, obj: dict[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> str | None:
        value = self.text(obj, key, path)
        if value is not None and value not in allowed:
            self.fail(path, f"{value!r} is not one of {', '.join(allowed)}")
            return None
        return value

    def code(self, obj: dict[str, Any], key: str, path: str, allowed: frozenset[str], what: str) -> str | None:
        value = self.text(obj, key, path)
        if value is not None and value not in allowed:
            self.fail(path, f"{value!r} is not an {what} code")
            return None
        return value

    def day(self, obj: dict[str, Any], key: str, path: str, required: bool = True) -> str | None:
        value = self.text(obj, key, path, required)
        if value is None:
            return None
        try:
            if len(value) != 10:
                raise ValueError
            return date.fromisoformat(value).isoformat()
        except ValueError:
            self.fail(path, f"{value!r} is not a date (YYYY-MM-DD)")
            return None

    def timestamp(self, obj: dict[str, Any], key: str, path: str) -> str | None:
        value = self.text(obj, key, path)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.fail(path, f"{value!r} is not an ISO 8601 timestamp")
            return None
        if parsed.tzinfo is None:
            self.fail(path, f"{value!r} has no UTC offset (e.g. +01:00)")
            return None
        return parsed.astimezone(UTC).isoformat()

    def integer(self, obj: dict[str, Any], key: str, path: str, minimum: int) -> int | None:
        value = obj.get(key)
        if value is None:
            self.fail(path, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            _exact(value)
            self.fail(path, f"{json.dumps(value, default=str)} is not a whole number")
            return None
        if value < minimum:
            self.fail(path, f"{value} is below the minimum of {minimum}")
            return None
        if value > 2**31 - 1:
            self.fail(path, f"{value} is too large")
            return None
        return value

    def amount(self, obj: dict[str, Any], key: str, path: str) -> str | None:
        value = obj.get(key)
        if value is None:
            self.fail(path, "is required")
            return None
        if value.__class__ is str and _PLAIN_AMOUNT.fullmatch(value):
            return value
        _exact(value)
        try:
            # A JSON number arrives as Decimal: shown as the sender wrote it, not as Decimal('...').
            return str(parse_amount(str(value) if isinstance(value, Decimal) else value, path))
        except InvalidInput as exc:
            self.fail(path, exc.problem)
            return None

    def rate(self, obj: dict[str, Any], key: str, path: str) -> str | None:
        value = obj.get(key)
        if value is None:
            self.fail(path, "is required")
            return None
        if value.__class__ is str and _PLAIN_RATE.fullmatch(value):
            return value
        _exact(value)
        if isinstance(value, bool | float):
            self.fail(path, f"{value!r} must be a decimal string such as '0.20'")
            return None
        try:
            rate = Decimal(str(value).strip())
        except InvalidOperation:
            self.fail(path, f"{value!r} is not a decimal rate such as '0.20'")
            return None
        if not rate.is_finite() or not 0 <= rate < 1 or rate != rate.quantize(Decimal("0.0001")):
            self.fail(path, f"{value!r} must be between 0 and 1 with at most 4 decimals")
            return None
        return str(rate)

    def array(self, obj: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
        value = obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, "must be an array")
            return []
        items = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                items.append(item)
            else:
                self.fail(f"{path}[{index}]", "must be an object")
        return items

    # ---------------------------------------------------------------- records
    def dossier(self, r: dict[str, Any]) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "dossier_number": self.text(r, "dossier_number", "dossier_number"),
            "platform_version": self.integer(r, "version", "version", 1),
            "created_at": self.timestamp(r, "created_at", "created_at"),
            "updated_at": self.timestamp(r, "updated_at", "updated_at"),
            "status": self.enum(r, "status", "status", STATUSES),
            "channel": self.enum(r, "channel", "channel", CHANNELS),
            "brand": self.text(r, "brand", "brand"),
            "agency_code": self.text(r, "agency_code", "agency_code", required=False),
            "currency": self.code(r, "currency", "currency", CURRENCIES, "ISO 4217 currency"),
            "departure_date": self.day(r, "departure_date", "departure_date"),
            "return_date": self.day(r, "return_date", "return_date"),
            "destination": self.text(r, "destination", "destination"),
            "destination_country": self.code(
                r, "destination_country", "destination_country", COUNTRIES, "ISO 3166 alpha-2 country"
            ),
        }
        if doc["departure_date"] and doc["return_date"] and doc["return_date"] < doc["departure_date"]:
            self.fail("return_date", f"{doc['return_date']} is before departure_date {doc['departure_date']}")
        doc.update(self.client(r.get("client")))
        doc["travellers"] = self.travellers(r)
        doc["services"], doc["lines"] = self.services(r)
        doc["payment_schedule"] = self.schedule(r)
        return doc

    def client(self, client: object) -> dict[str, Any]:
        if not isinstance(client, dict):
            self.fail("client", "is required" if client is None else "must be an object")
            return {}
        language = client.get("language") or "fr"
        if language not in LANGUAGES:
            _exact(language)
            self.fail("client.language", f"{language!r} is not one of {', '.join(LANGUAGES)}")
        address = client.get("address")
        if address is not None:
            if not isinstance(address, dict):
                self.fail("client.address", "must be an object")
                address = None
            else:
                address = {
                    key: self.text(address, key, f"client.address.{key}", required=False)
                    for key in ("line1", "postal_code", "city")
                } | {
                    "country": self.code(
                        address, "country", "client.address.country", COUNTRIES, "ISO 3166 alpha-2 country"
                    )
                    if address.get("country") is not None
                    else None
                }
        return {
            "client_id": self.text(client, "client_id", "client.client_id"),
            "client_title": self.text(client, "title", "client.title", required=False),
            "client_first_name": self.text(client, "first_name", "client.first_name"),
            "client_last_name": self.text(client, "last_name", "client.last_name"),
            "client_email": self.text(client, "email", "client.email", required=False),
            "client_phone": self.text(client, "phone", "client.phone", required=False),
            "client_language": language,
            "client_address": address,
        }

    def travellers(self, r: dict[str, Any]) -> list[dict[str, Any]]:
        out, seen = [], set()
        for i, t in enumerate(self.array(r, "travellers", "travellers")):
            p = f"travellers[{i}]"
            traveller_id = self.text(t, "traveller_id", f"{p}.traveller_id")
            if traveller_id in seen:
                self.fail(f"{p}.traveller_id", f"{traveller_id!r} appears twice in the dossier")
            seen.add(traveller_id)
            out.append(
                {
                    "traveller_id": traveller_id,
                    "first_name": self.text(t, "first_name", f"{p}.first_name"),
                    "last_name": self.text(t, "last_name", f"{p}.last_name"),
                    "birth_date": self.day(t, "birth_date", f"{p}.birth_date", required=False),
                    "kind": self.enum(t, "kind", f"{p}.kind", TRAVELLER_KINDS),
                }
            )
        return out

    def services(self, r: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        services, lines = [], []
        service_ids: set[str | None] = set()
        line_ids: set[str | None] = set()
        for i, s in enumerate(self.array(r, "services", "services")):
            p = f"services[{i}]"
            service_id = self.text(s, "service_id", f"{p}.service_id")
            if service_id in service_ids:
                self.fail(f"{p}.service_id", f"{service_id!r} appears twice in the dossier")
            service_ids.add(service_id)
            start = self.day(s, "start_date", f"{p}.start_date", required=False)
            end = self.day(s, "end_date", f"{p}.end_date", required=False)
            if start and end and end < start:
                self.fail(f"{p}.end_date", f"{end} is before start_date {start}")
            supplier_code = self.text(s, "supplier_code", f"{p}.supplier_code")
            services.append(
                {
                    "service_id": service_id,
                    "kind": self.enum(s, "kind", f"{p}.kind", SERVICE_KINDS),
                    "supplier_code": supplier_code,
                    "supplier_reference": self.text(s, "supplier_reference", f"{p}.supplier_reference", required=False),
                    "label": self.text(s, "label", f"{p}.label"),
                    "start_date": start,
                    "end_date": end,
                    "status": self.enum(s, "status", f"{p}.status", SERVICE_STATUSES),
                }
            )
            for j, line in enumerate(self.array(s, "lines", f"{p}.lines")):
                q = f"{p}.lines[{j}]"
                line_id = self.text(line, "line_id", f"{q}.line_id")
                if line_id in line_ids:
                    self.fail(f"{q}.line_id", f"{line_id!r} appears twice in the dossier")
                line_ids.add(line_id)
                lines.append(
                    {
                        "service_id": service_id,
                        "supplier_code": supplier_code,
                        "line_id": line_id,
                        "label": self.text(line, "label", f"{q}.label"),
                        "quantity": self.integer(line, "quantity", f"{q}.quantity", 1),
                        "unit_sale_amount": self.amount(line, "unit_sale_amount", f"{q}.unit_sale_amount"),
                        "unit_purchase_amount": self.amount(line, "unit_purchase_amount", f"{q}.unit_purchase_amount"),
                        "purchase_currency": self.code(
                            line, "purchase_currency", f"{q}.purchase_currency", CURRENCIES, "ISO 4217 currency"
                        ),
                        "vat_rate": self.rate(line, "vat_rate", f"{q}.vat_rate"),
                    }
                )
        return services, lines

    def schedule(self, r: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for i, d in enumerate(self.array(r, "payment_schedule", "payment_schedule")):
            p = f"payment_schedule[{i}]"
            out.append(
                {
                    "seq": i + 1,
                    "due_date": self.day(d, "due_date", f"{p}.due_date"),
                    "amount": self.amount(d, "amount", f"{p}.amount"),
                    "kind": self.enum(d, "kind", f"{p}.kind", SCHEDULE_KINDS),
                    "method": self.enum(d, "method", f"{p}.method", SCHEDULE_METHODS),
                }
            )
        return out
