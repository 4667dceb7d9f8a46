"""Accounting periods: a day, a month or a year, and the refusal of a posting dated in a closed one."""

from __future__ import annotations

import calendar
import re
from datetime import date

from backoffice.domain.errors import DomainError, InvalidInput

GRANULARITIES = ("day", "month", "year")
# Raised by the database trigger app.refuse_closed_posting (migration 0021).
PERIOD_CLOSED_SQLSTATE = "BOC01"

_FORMS = {"day": r"\d{4}-\d{2}-\d{2}", "month": r"\d{4}-\d{2}", "year": r"\d{4}"}
_EXAMPLES = {"day": "2026-03-31", "month": "2026-03", "year": "2026"}


class PeriodClosed(DomainError):
    """A posting dated in a closed period: it belongs in the next open one."""


def refusal(field: str, day: date, granularity: str, start: date) -> PeriodClosed:
    return PeriodClosed(
        f"{field}: {day.isoformat()} is in the closed {granularity} {label(granularity, start)}; "
        "record it in the next open period"
    )


def label(granularity: str, start: date) -> str:
    """How a person writes the period: 2026-03-31, 2026-03 or 2026."""
    return {"day": start.isoformat(), "month": start.strftime("%Y-%m"), "year": str(start.year)}[granularity]


def span(granularity: object, period: object) -> tuple[str, date, date]:
    """(granularity, first day, last day) of the period written as `period`; InvalidInput otherwise."""
    if granularity not in GRANULARITIES:
        raise InvalidInput("granularity", f"{granularity!r} is not one of {', '.join(GRANULARITIES)}")
    assert isinstance(granularity, str)
    text = period.isoformat() if isinstance(period, date) and granularity == "day" else period
    if not isinstance(text, str) or not re.fullmatch(_FORMS[granularity], text.strip()):
        raise InvalidInput("period", f"{period!r} is not a {granularity} (write it like {_EXAMPLES[granularity]})")
    parts = [int(p) for p in text.strip().split("-")]
    try:
        if granularity == "day":
            first = last = date(*parts)
        elif granularity == "month":
            first = date(parts[0], parts[1], 1)
            last = date(parts[0], parts[1], calendar.monthrange(parts[0], parts[1])[1])
        else:
            first, last = date(parts[0], 1, 1), date(parts[0], 12, 31)
    except ValueError:
        raise InvalidInput("period", f"{period!r} is not a real {granularity}") from None
    return granularity, first, last
