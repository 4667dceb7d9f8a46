"""Invoice numbers: continuous and chronological per (brand, series, year), without gaps.

The number is taken by incrementing a counter row in the caller's transaction: if that
transaction rolls back, the increment does too and the next issue gets the same number; while
it is open, the row lock makes every other issue of the series wait. A PostgreSQL sequence would
be wrong here: its values are never given back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from backoffice.domain.clock import ACCOUNTING_TIMEZONE_NAME as TIMEZONE

INVOICE = "FA"
CREDIT_NOTE = "AV"
# The date is read from the clock when the counter row is locked, so a number taken later is
# never dated earlier, even across midnight; Paris, because that is the calendar of the books.

_TAKE = sa.text(
    f"""INSERT INTO app.invoice_counters AS c (brand, series, year, last_number, last_date)
        SELECT :brand, :series, extract(year FROM t.today)::integer, 1, t.today
        FROM (SELECT (clock_timestamp() AT TIME ZONE '{TIMEZONE}')::date AS today) t
        ON CONFLICT (brand, series, year) DO UPDATE
            SET last_number = c.last_number + 1,
                last_date = greatest(c.last_date, (clock_timestamp() AT TIME ZONE '{TIMEZONE}')::date)
        RETURNING year, last_number, last_date"""
)


@dataclass(frozen=True)
class Number:
    brand: str
    series: str
    year: int
    seq: int
    issue_date: date

    @property
    def text(self) -> str:
        return f"{brand_code(self.brand)}-{self.series}-{self.year}-{self.seq:06d}"


def brand_code(brand: str) -> str:
    """The brand as it prefixes a number: letters and digits, upper case (`Soleil` -> `SOLEIL`)."""
    return re.sub(r"[^A-Z0-9]", "", brand.upper())[:12] or "X"


def take(conn: Connection, brand: str, series: str) -> Number:
    """The next number of the series, valid only if the caller's transaction commits."""
    if series not in (INVOICE, CREDIT_NOTE):
        raise ValueError(f"{series!r} is not an invoice series")
    row = conn.execute(_TAKE, {"brand": brand, "series": series}).one()
    return Number(brand, series, row.year, row.last_number, row.last_date)
