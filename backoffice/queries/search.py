"""Dossier search: the agents' list, filtered, sorted and paginated in SQL.

User text only ever reaches SQL as bound parameters; the ORDER BY comes from a fixed whitelist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from backoffice.domain.errors import InvalidInput
from backoffice.queries.criteria import SearchCriteria, validate

__all__ = ["SORT_KEYS", "SearchCriteria", "SearchPage", "SearchRow", "list_brands", "search"]

SORT_KEYS: dict[str, str] = {
    "dossier_number": "d.dossier_number",
    "client": "d.client_name_search",
    "departure_date": "d.departure_date",
    "status": "d.status",
    "brand": "d.brand",
    "destination": "d.destination",
    "sale_total": "d.sale_total",
    "created_at": "d.created_at",
    "updated_at": "d.updated_at",
}
MAX_PAGE_SIZE = 200
# Payments whose money actually moved; a failed attempt counts for nothing.
MONEY_MOVING = ("captured", "refunded", "chargeback")


@dataclass(frozen=True)
class SearchRow:
    dossier_number: str
    client_last_name: str
    client_first_name: str
    client_email: str | None
    departure_date: date
    return_date: date
    status: str
    brand: str
    channel: str
    destination: str
    sale_total: Decimal
    currency: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SearchPage:
    rows: tuple[SearchRow, ...]
    total: int
    page: int
    page_size: int

    @property
    def page_count(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _like_fragment(value: str) -> str:
    """`value` as a LIKE pattern that matches it literally anywhere."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _term_match(kind: str, column: str, condition: str) -> str:
    """`column` is one of the terms of `kind` meeting `condition` (on `t.term`).

    app.search_terms holds every distinct value of `column` (a trigger keeps it), so this is the
    same test as `condition` on the column itself, run over far fewer rows and then joined by a
    btree. `kind` is a literal so that the planner picks the kind's partial trigram index."""
    return f"{column} IN (SELECT t.term FROM app.search_terms t WHERE t.kind = '{kind}' AND ({condition}))"


def _where(c: SearchCriteria, today: date, now: datetime) -> tuple[list[str], dict[str, Any]]:
    where: list[str] = []
    params: dict[str, Any] = {}
    if c.dossier_number:
        where.append("d.dossier_number LIKE :number_prefix")
        params["number_prefix"] = _like_fragment(c.dossier_number.upper())[1:]
    if c.client_name:
        # `%` catches a misspelt whole name, `<%` a misspelt or partial word ("dupond" in
        # "dupont jean"), LIKE an exact fragment too short to have trigrams in common. They run
        # over the few thousand distinct names (app.search_terms), not the million dossiers.
        where.append(
            _term_match(
                "name",
                "d.client_name_search",
                """t.term % app.normalise_text(:name) OR app.normalise_text(:name) <% t.term
                   OR t.term LIKE app.normalise_text(:name_like)""",
            )
        )
        params["name"] = c.client_name
        params["name_like"] = _like_fragment(c.client_name)
    if c.email:
        where.append(_term_match("email", "lower(d.client_email)", "t.term LIKE lower(:email)"))
        params["email"] = _like_fragment(c.email)
    if c.statuses:
        where.append("d.status = ANY(:statuses)")
        params["statuses"] = list(c.statuses)
    if c.brands:
        where.append("d.brand = ANY(:brands)")
        params["brands"] = list(c.brands)
    if c.channels:
        where.append("d.channel = ANY(:channels)")
        params["channels"] = list(c.channels)
    if c.destination:
        where.append(
            _term_match(
                "destination", "d.destination", "app.normalise_text(t.term) LIKE app.normalise_text(:destination)"
            )
        )
        params["destination"] = _like_fragment(c.destination)
    if c.supplier_code or c.supplier_reference:
        service = ["s.dossier_number = d.dossier_number"]
        if c.supplier_code:
            service.append("s.supplier_code = :supplier_code")
            params["supplier_code"] = c.supplier_code
        if c.supplier_reference:
            service.append("upper(s.supplier_reference) = upper(:supplier_reference)")
            params["supplier_reference"] = c.supplier_reference
        where.append(f"EXISTS (SELECT 1 FROM app.services s WHERE {' AND '.join(service)})")
    # Booking dates are whole UTC days, compared as a half-open range so the index is usable.
    if c.created_from:
        where.append("d.created_at >= :created_from")
        params["created_from"] = datetime.combine(c.created_from, time(), UTC)
    if c.created_to:
        where.append("d.created_at < :created_before")
        params["created_before"] = datetime.combine(c.created_to + timedelta(days=1), time(), UTC)
    if c.departure_from:
        where.append("d.departure_date >= :departure_from")
        params["departure_from"] = c.departure_from
    if c.departure_to:
        where.append("d.departure_date <= :departure_to")
        params["departure_to"] = c.departure_to
    if c.amount_min is not None:
        where.append("d.sale_total >= :amount_min")
        params["amount_min"] = c.amount_min
    if c.amount_max is not None:
        where.append("d.sale_total <= :amount_max")
        params["amount_max"] = c.amount_max
    if c.departure_within_days is not None:
        where.append("d.departure_date BETWEEN :today AND :departure_limit")
        params["departure_limit"] = today + timedelta(days=c.departure_within_days)
    if c.balance_unpaid:
        where.append(
            """(SELECT coalesce(sum(ps.amount), 0) FROM app.payment_schedule ps
                WHERE ps.dossier_number = d.dossier_number AND ps.due_date <= :today)
               > (SELECT coalesce(sum(p.amount), 0) FROM app.dossier_payments p
                  WHERE p.dossier_number = d.dossier_number AND p.status = ANY(:money_moving))"""
        )
        params["money_moving"] = list(MONEY_MOVING)
    if c.updated_within_days is not None:
        where.append("d.updated_at >= :updated_since")
        params["updated_since"] = now - timedelta(days=c.updated_within_days)
    params["today"] = today
    return where, params


def search(
    conn: Connection,
    criteria: SearchCriteria,
    sort: str = "departure_date",
    descending: bool = False,
    page: int = 1,
    page_size: int = 50,
    *,
    today: date | None = None,
    now: datetime | None = None,
) -> SearchPage:
    """One page of the dossiers matching `criteria`; `today`/`now` default to the clock."""
    if sort not in SORT_KEYS:
        raise InvalidInput("sort", f"{sort!r} is not one of {', '.join(SORT_KEYS)}")
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise InvalidInput("page", f"{page!r} must be a whole number from 1")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput("page_size", f"{page_size!r} must be between 1 and {MAX_PAGE_SIZE}")
    criteria = validate(criteria)
    now = now or datetime.now(UTC)
    where, params = _where(criteria, today or date.today(), now)
    direction = "DESC" if descending else "ASC"
    # dossier_number breaks ties, so paging through equal keys never repeats or skips a row.
    order = f"{SORT_KEYS[sort]} {direction} NULLS LAST, d.dossier_number {direction}"
    # The page's numbers and the total first, reading only the columns filtered and sorted on (an
    # index-only scan where an index covers them: thousands of matches are counted without
    # visiting their rows); then the rows of that one page.
    sql = f"""
        WITH page AS (
            SELECT d.dossier_number, count(*) OVER () AS total
            FROM app.dossiers d
            WHERE {" AND ".join(where) or "true"}
            ORDER BY {order}
            LIMIT :limit OFFSET :offset)
        SELECT d.dossier_number, d.client_last_name, d.client_first_name, d.client_email,
               d.departure_date, d.return_date, d.status, d.brand, d.channel, d.destination,
               d.sale_total, d.currency, d.created_at, d.updated_at, page.total
        FROM page JOIN app.dossiers d ON d.dossier_number = page.dossier_number
        ORDER BY {order}"""
    params.update(limit=page_size, offset=(page - 1) * page_size)
    result = conn.execute(sa.text(sql), params).mappings().all()
    total = result[0]["total"] if result else _count(conn, where, params)
    rows = tuple(SearchRow(**{k: v for k, v in r.items() if k != "total"}) for r in result)
    return SearchPage(rows=rows, total=total, page=page, page_size=page_size)


def matching_numbers_sql(
    criteria: SearchCriteria, *, today: date | None = None, now: datetime | None = None
) -> tuple[str, dict[str, Any]]:
    """SQL selecting the `dossier_number` of every dossier matching `criteria` (all of them, not
    one page), with its parameters: for actions on "what the Liste shows", such as a mass
    regulation, so that the selection is exactly the agent's search."""
    where, params = _where(validate(criteria), today or date.today(), now or datetime.now(UTC))
    return f"SELECT d.dossier_number FROM app.dossiers d WHERE {' AND '.join(where) or 'true'}", params


def _count(conn: Connection, where: list[str], params: dict[str, Any]) -> int:
    """The total when the page asked for lies past the last row (the window count is then absent)."""
    if params["offset"] == 0:
        return 0
    sql = f"SELECT count(*) FROM app.dossiers d WHERE {' AND '.join(where) or 'true'}"
    return conn.execute(sa.text(sql), params).scalar_one()


def list_brands(conn: Connection) -> list[str]:
    """The brands that have dossiers, for the search form's choices."""
    return list(conn.execute(sa.text("SELECT DISTINCT brand FROM app.dossiers ORDER BY brand")).scalars())
