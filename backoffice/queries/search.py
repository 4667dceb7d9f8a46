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

from backoffice.domain.clock import accounting_today
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
# The total is counted exactly up to here (or up to the rows before the page asked for, if more);
# past it the page says "more than COUNT_CAP": counting 40,000 matches of a broad filter at a
# million dossiers costs more than the page itself, and nobody pages that far (docs/scaling.md).
COUNT_CAP = 1_000
# Payments whose money actually moved; a failed attempt counts for nothing (the same list as
# app.arrears_of in migration 0023, which keeps the arrears the search reads).
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
    # Exact when `total_exact`; otherwise a lower bound: there are more than `total` matches.
    total: int
    page: int
    page_size: int
    total_exact: bool = True

    @property
    def page_count(self) -> int:
        """The pages known to exist: when the total is only a lower bound, one more than it fills."""
        return max(1, -(-self.total // self.page_size) + (0 if self.total_exact else 1))


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


# `%` catches a misspelt whole name, `<%` a misspelt or partial word ("dupond" in "dupont jean"),
# LIKE an exact fragment too short to have trigrams in common. They run over the few thousand
# distinct names (app.search_terms), not the million dossiers.
_NAME_MATCH = """t.term % app.normalise_text(:name) OR app.normalise_text(:name) <% t.term
                 OR t.term LIKE app.normalise_text(:name_like)"""
_NAME_CONDITION = _term_match("name", "d.client_name_search", _NAME_MATCH)
_DESTINATION_MATCH = "app.normalise_text(t.term) LIKE app.normalise_text(:destination)"
_DESTINATION_CONDITION = _term_match("destination", "d.destination", _DESTINATION_MATCH)
# The term filters whose dossiers an index lists in departure order (migration 0026), by criterion.
_PER_TERM = {
    "client_name": ("name", "d.client_name_search", _NAME_MATCH, _NAME_CONDITION),
    "destination": ("destination", "d.destination", _DESTINATION_MATCH, _DESTINATION_CONDITION),
}


def _where(c: SearchCriteria, today: date, now: datetime) -> tuple[list[str], dict[str, Any]]:
    where: list[str] = []
    params: dict[str, Any] = {}
    if c.dossier_number:
        where.append("d.dossier_number LIKE :number_prefix")
        params["number_prefix"] = _like_fragment(c.dossier_number.upper())[1:]
    if c.client_name:
        where.append(_NAME_CONDITION)
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
        where.append(_DESTINATION_CONDITION)
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
        # app.dossier_arrears holds, per dossier, the days on which the schedule fallen due
        # exceeds the money-moving payments (kept by triggers, migration 0023): the same test as
        # comparing the two sums on `today`, one index probe instead of two aggregates.
        # The dossier's departure bounds are repeated on the row's copy of its departure, so that a
        # search bounded by departure (the shortcut) starts from the few rows in arrears departing
        # then rather than probing every dossier departing then.
        # The copy is also equated with the dossier's own departure (the triggers keep them equal):
        # the planner may then read the arrears in the page's order and stop at the page.
        arrears = [
            "a.dossier_number = d.dossier_number",
            "a.departure_date = d.departure_date",
            "a.arrears @> CAST(:today AS date)",
        ]
        for bound in ("departure_from", "departure_to", "departure_limit"):
            if bound in params:
                arrears.append(f"a.departure_date {'>=' if bound == 'departure_from' else '<='} :{bound}")
        if c.departure_within_days is not None:
            arrears.append("a.departure_date >= :today")
        where.append(f"EXISTS (SELECT 1 FROM app.dossier_arrears a WHERE {' AND '.join(arrears)})")
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
    where, params = _where(criteria, today or accounting_today(), now)
    direction = "DESC" if descending else "ASC"
    # dossier_number breaks ties, so paging through equal keys never repeats or skips a row.
    order = f"{SORT_KEYS[sort]} {direction} NULLS LAST, d.dossier_number {direction}"
    condition = " AND ".join(where) or "true"
    # The page's numbers first, reading only the columns filtered and sorted on (an index-only
    # scan where an index covers them); then the rows of that one page. With a
    # filter, the sort key is wrapped so that no index provides its order: otherwise, for the
    # LIMIT, the planner may walk the sort's index and test the filter row by row, hoping to fill
    # the page early (a week of booking dates sorted by departure: 2 s at a million). The filter's
    # own index then finds the matches and a top-N sort picks the page. Without a filter, walking
    # the sort's index and stopping at the page is exactly right.
    # When the filter bounds the sort column itself (a departure window sorted by departure), the
    # walk reads at most the rows within the bounds and stops at the page: it is kept.
    bounded = any(getattr(criteria, bound) not in (None, "") for bound in _BOUNDS.get(sort, ()))
    # Wrapping the first key is enough for no index to provide the order; the tie-breaker stays plain.
    fenced = f"{_unindexed(SORT_KEYS[sort])} {direction} NULLS LAST, d.dossier_number {direction}"
    inner = fenced if where and not bounded else order
    per_term = next((_PER_TERM[f] for f in _PER_TERM if getattr(criteria, f)), None)
    if per_term and sort == "departure_date":
        page_numbers = _per_term_page(*per_term, where, direction)
    else:
        page_numbers = f"""
            SELECT d.dossier_number
            FROM app.dossiers d
            WHERE {condition}
            ORDER BY {inner}
            LIMIT :limit OFFSET :offset"""
    # The capped count rides in the same statement, so a full page costs one round trip, not two
    # (on a busy machine each one is a scheduling delay). It is a scalar subquery in a CASE: run
    # only when the page is full, since a shorter page is the last one and knows the total.
    sql = f"""
        WITH page AS ({page_numbers})
        SELECT d.dossier_number, d.client_last_name, d.client_first_name, d.client_email,
               d.departure_date, d.return_date, d.status, d.brand, d.channel, d.destination,
               d.sale_total, d.currency, d.created_at, d.updated_at,
               CASE WHEN (SELECT count(*) FROM page) = :limit THEN ({_count_sql(condition)}) END AS capped_count
        FROM page JOIN app.dossiers d ON d.dossier_number = page.dossier_number
        ORDER BY {order}"""
    offset = (page - 1) * page_size
    cap = max(COUNT_CAP, offset + page_size)
    params.update(limit=page_size, offset=offset, cap_plus_one=cap + 1)
    result = conn.execute(sa.text(sql), params).mappings().all()
    rows = tuple(SearchRow(**{k: v for k, v in r.items() if k != "capped_count"}) for r in result)
    if rows and len(rows) < page_size:
        total, exact = offset + len(rows), True  # the last page: nothing to count
    else:
        found = result[0]["capped_count"] if rows else conn.execute(sa.text(_count_sql(condition)), params).scalar_one()
        total, exact = (found, True) if found <= cap else (cap, False)
    return SearchPage(rows=rows, total=total, page=page, page_size=page_size, total_exact=exact)


def _per_term_page(kind: str, column: str, match: str, condition: str, where: list[str], direction: str) -> str:
    """The page's numbers for a name (or destination) search in departure order: the first rows of
    each matching term, merged.

    A common name typed with a typo matches a few dozen names and 20,000 dossiers at a million;
    sorting them all for 50 rows was most of the search. The index (client_name_search,
    departure_date, dossier_number) lists each name's dossiers in the page's order (and the same
    for destinations), so each term gives at most its first `offset + limit` matches, every other
    filter applied, and the page is the first of those few hundred rows. Terms are distinct, so no
    dossier comes twice; the order is total (departure_date is NOT NULL, the number breaks ties),
    so the page holds the same rows as sorting every match."""
    others = [w for w in where if w != condition]
    within = " AND ".join([f"{column} = t.term", *others])
    return f"""
            SELECT m.dossier_number
            FROM app.search_terms t
            CROSS JOIN LATERAL (
                SELECT d.dossier_number, d.departure_date FROM app.dossiers d
                WHERE {within}
                ORDER BY d.departure_date {direction}, d.dossier_number {direction}
                LIMIT :limit + :offset) AS m
            WHERE t.kind = '{kind}' AND ({match})
            ORDER BY m.departure_date {direction}, m.dossier_number {direction}
            LIMIT :limit OFFSET :offset"""


# The criteria that bound each sort column: a walk of that column's index is then bounded too.
_BOUNDS: dict[str, tuple[str, ...]] = {
    "departure_date": ("departure_from", "departure_to", "departure_within_days"),
    "created_at": ("created_from", "created_to"),
    "updated_at": ("updated_within_days",),
    "sale_total": ("amount_min", "amount_max"),
    "dossier_number": ("dossier_number",),
}
_UNINDEXED = {
    "d.client_name_search": "d.client_name_search || ''",
    "d.status": "d.status || ''",
    "d.brand": "d.brand || ''",
    "d.destination": "d.destination || ''",
    "d.dossier_number": "d.dossier_number || ''",
    "d.departure_date": "(d.departure_date + 0)",
    "d.sale_total": "(d.sale_total + 0)",
    "d.created_at": "(d.created_at + interval '0 seconds')",
    "d.updated_at": "(d.updated_at + interval '0 seconds')",
}


def _unindexed(column: str) -> str:
    """`column` as an expression of the same value and order that no index provides."""
    return _UNINDEXED[column]


def matching_numbers_sql(
    criteria: SearchCriteria, *, today: date | None = None, now: datetime | None = None
) -> tuple[str, dict[str, Any]]:
    """SQL selecting the `dossier_number` of every dossier matching `criteria` (all of them, not
    one page), with its parameters: for actions on "what the Liste shows", such as a mass
    regulation, so that the selection is exactly the agent's search."""
    where, params = _where(validate(criteria), today or accounting_today(), now or datetime.now(UTC))
    return f"SELECT d.dossier_number FROM app.dossiers d WHERE {' AND '.join(where) or 'true'}", params


def _count_sql(condition: str) -> str:
    """The number of matches, counting no further than `:cap_plus_one`: past the cap the total is
    only "more than" it, so a filter matching tens of thousands of dossiers costs what `cap` of
    them cost."""
    return f"SELECT count(*) FROM (SELECT 1 FROM app.dossiers d WHERE {condition} LIMIT :cap_plus_one) m"


def list_brands(conn: Connection) -> list[str]:
    """The brands that have dossiers, for the search form's choices."""
    return list(conn.execute(sa.text("SELECT DISTINCT brand FROM app.dossiers ORDER BY brand")).scalars())
