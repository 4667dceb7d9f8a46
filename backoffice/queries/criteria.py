"""What an agent searches dossiers by, checked and turned to and from JSON (saved searches)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from typing import Any

from backoffice.domain.errors import InvalidInput
from backoffice.domain.money import parse_amount

STATUSES = ("quote", "option", "confirmed", "cancelled")
CHANNELS = ("web", "agency", "call_center", "partner")
MAX_DAYS = 3660
MAX_TEXT = 200


@dataclass(frozen=True)
class SearchCriteria:
    """Every field is optional; the filters given are combined with AND."""

    dossier_number: str | None = None
    client_name: str | None = None
    email: str | None = None
    statuses: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    destination: str | None = None
    supplier_code: str | None = None
    supplier_reference: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    departure_from: date | None = None
    departure_to: date | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    departure_within_days: int | None = None
    balance_unpaid: bool = False
    updated_within_days: int | None = None

    def is_empty(self) -> bool:
        return self == SearchCriteria()


_TEXT_FIELDS = ("dossier_number", "client_name", "email", "destination", "supplier_code", "supplier_reference")
_DATE_RANGES = (("created_from", "created_to"), ("departure_from", "departure_to"))
_DAY_FIELDS = ("departure_within_days", "updated_within_days")


def validate(criteria: SearchCriteria) -> SearchCriteria:
    """The same criteria, trimmed (blank text becomes None); InvalidInput names the first bad field."""
    changes: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = getattr(criteria, name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidInput(name, "must be text")
        value = value.strip()
        if len(value) > MAX_TEXT:
            raise InvalidInput(name, f"is longer than {MAX_TEXT} characters")
        changes[name] = value or None
    for name, allowed in (("statuses", STATUSES), ("channels", CHANNELS)):
        unknown = [v for v in getattr(criteria, name) if v not in allowed]
        if unknown:
            raise InvalidInput(name, f"{unknown[0]!r} is not one of {', '.join(allowed)}")
    if any(not isinstance(b, str) or not b.strip() for b in criteria.brands):
        raise InvalidInput("brands", "a brand must be non-empty text")
    for start, end in _DATE_RANGES:
        low, high = getattr(criteria, start), getattr(criteria, end)
        for name, value in ((start, low), (end, high)):
            if value is not None and not isinstance(value, date):
                raise InvalidInput(name, f"{value!r} is not a date")
        if low and high and low > high:
            raise InvalidInput(end, f"{high.isoformat()} is before {low.isoformat()}")
    for name in ("amount_min", "amount_max"):
        value = getattr(criteria, name)
        if value is not None:
            changes[name] = parse_amount(value, name)
    low, high = changes.get("amount_min"), changes.get("amount_max")
    if low is not None and high is not None and low > high:
        raise InvalidInput("amount_max", f"{high} is below the minimum {low}")
    for name in _DAY_FIELDS:
        value = getattr(criteria, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
            raise InvalidInput(name, f"{value!r} must be a whole number of days between 0 and {MAX_DAYS}")
    return dataclasses.replace(criteria, **changes)


def to_dict(criteria: SearchCriteria) -> dict[str, Any]:
    """JSON-ready: only the fields that are set, dates ISO, amounts as decimal strings."""
    out: dict[str, Any] = {}
    for f in fields(criteria):
        value = getattr(criteria, f.name)
        if value is None or value == () or value is False:
            continue
        if isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def from_dict(data: dict[str, Any]) -> SearchCriteria:
    """The inverse of `to_dict`, validated; an unknown key is refused by name."""
    known = {f.name for f in fields(SearchCriteria)}
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name not in known:
            raise InvalidInput(name, "is not a search criterion")
        if name.endswith(("_from", "_to")) and isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                raise InvalidInput(name, f"{value!r} is not a date (YYYY-MM-DD)") from None
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return validate(SearchCriteria(**values))
