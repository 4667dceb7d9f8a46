"""Checks of text fields (CSV cells, XML element text), collecting every problem of a record.

Each problem names its field, so one rejection tells the sender everything to fix on that line.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

from backoffice.domain.money import CURRENCIES

# The contract's amount: '.' as separator, at most 2 decimals. Decimal() alone would also take
# '1e3', '1_000' or 'NaN', which no sender means as an amount.
AMOUNT = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,2})?")
RATE = re.compile(r"[0-9](\.[0-9]{1,4})?")
COUNT = re.compile(r"[0-9]{1,9}")


class Fields:
    def __init__(self, values: dict[str, str | None]) -> None:
        self.values = values
        self.problems: list[str] = []

    def fail(self, field: str, problem: str) -> None:
        self.problems.append(f"{field}: {problem}")

    def text(self, field: str, required: bool = True) -> str | None:
        value = (self.values.get(field) or "").strip()
        if not value:
            if required:
                self.fail(field, "is required")
            return None
        return value

    def enum(self, field: str, allowed: tuple[str, ...]) -> str | None:
        value = self.text(field)
        if value is not None and value not in allowed:
            self.fail(field, f"{value!r} is not one of {', '.join(allowed)}")
            return None
        return value

    def currency(self, field: str) -> str | None:
        value = self.text(field)
        if value is not None and value not in CURRENCIES:
            self.fail(field, f"{value!r} is not an ISO 4217 currency code")
            return None
        return value

    def day(self, field: str, required: bool = True) -> date | None:
        value = self.text(field, required)
        if value is None:
            return None
        try:
            if len(value) != 10:
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            self.fail(field, f"{value!r} is not a date (YYYY-MM-DD)")
            return None

    def timestamp(self, field: str) -> datetime | None:
        value = self.text(field)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.fail(field, f"{value!r} is not an ISO 8601 timestamp")
            return None
        if parsed.tzinfo is None:
            self.fail(field, f"{value!r} has no UTC offset (e.g. +01:00)")
            return None
        return parsed.astimezone(UTC)

    def amount(self, field: str) -> Decimal | None:
        value = self.text(field)
        if value is None:
            return None
        if not AMOUNT.fullmatch(value):
            self.fail(field, f"{value!r} is not a decimal amount with '.' and at most 2 decimals")
            return None
        return Decimal(value).quantize(Decimal("0.01"))

    def rate(self, field: str) -> Decimal | None:
        value = self.text(field)
        if value is None:
            return None
        if not RATE.fullmatch(value) or not Decimal(value) < 1:
            self.fail(field, f"{value!r} is not a rate between 0 and 1 with at most 4 decimals (e.g. 0.20)")
            return None
        return Decimal(value).quantize(Decimal("0.0001"))

    def positive_int(self, field: str) -> int | None:
        value = self.text(field)
        if value is None:
            return None
        if not COUNT.fullmatch(value) or int(value) < 1:
            self.fail(field, f"{value!r} is not a whole number >= 1")
            return None
        return int(value)
