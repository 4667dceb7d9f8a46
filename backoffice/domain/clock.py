"""The business day: one "today" for every service, page and check.

The product's day is the accountant's, in the accounting timezone (dbt's `accounting_timezone`
var), never the server's UTC date: between 23:00 and midnight UTC (22:00 in summer) Paris is
already on the next day, and a payment recorded then is dated, closed-period-checked and exported
on the Paris day. Services take `today` as a parameter where a test or a catch-up run needs another
day, and default to this one.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

ACCOUNTING_TIMEZONE_NAME = "Europe/Paris"  # also the SQL literal: AT TIME ZONE 'Europe/Paris'
ACCOUNTING_TIMEZONE = ZoneInfo(ACCOUNTING_TIMEZONE_NAME)


def accounting_today() -> date:
    """Today in the accounting timezone."""
    return datetime.now(ACCOUNTING_TIMEZONE).date()
