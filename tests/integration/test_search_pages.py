"""Search pages at scale: a name or destination search sorted by departure takes the first rows of
each matching term and merges them (backoffice/queries/search.py, `_per_term_page`). Every page
must hold exactly the rows that sorting every match would give: compared here, page after page,
with the uncapped selection (`matching_numbers_sql`) sorted in Python."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from backoffice.queries.search import SearchCriteria, matching_numbers_sql, search

TODAY = date(2026, 11, 2)
LAST_NAMES = ("Martin", "Martins", "Martine", "Marting", "Dupont", "Durand")
DESTINATIONS = ("Lisbonne", "Lisboa", "Porto", "Séville")
STATUSES = ("quote", "option", "confirmed", "cancelled")


def _dossiers(db: sa.Engine, count: int) -> None:
    """`count` dossiers over a few near-duplicate names and destinations, with many departures
    falling on the same day (ties are broken by the dossier number)."""
    with db.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.dossiers (dossier_number, platform_version, status, channel, brand, currency,
                       departure_date, return_date, destination, destination_country, client_id,
                       client_first_name, client_last_name, sale_total, created_at, updated_at)
                   SELECT 'BK-PAGE-' || lpad(i::text, 5, '0'), 1, (CAST(:statuses AS text[]))[1 + i % 4], 'web',
                          'Soleil', 'EUR', DATE '2026-11-02' + (i * 7919) % 23, DATE '2026-12-31',
                          (CAST(:destinations AS text[]))[1 + i % 4], 'PT', 'C' || i, 'Jean',
                          (CAST(:names AS text[]))[1 + (i * 31) % 6], 1000.00, now(), now()
                   FROM generate_series(1, :count) AS i"""
            ),
            {"count": count, "statuses": list(STATUSES), "destinations": list(DESTINATIONS), "names": list(LAST_NAMES)},
        )


def _expected(conn: sa.Connection, criteria: SearchCriteria, descending: bool) -> list[str]:
    sql, params = matching_numbers_sql(criteria, today=TODAY)
    rows = conn.execute(
        sa.text(f"SELECT dossier_number, departure_date FROM app.dossiers WHERE dossier_number IN ({sql})"), params
    ).all()
    return [n for n, _ in sorted(rows, key=lambda r: (r[1], r[0].encode()), reverse=descending)]


def _paged(conn: sa.Connection, criteria: SearchCriteria, descending: bool, size: int) -> list[str]:
    out: list[str] = []
    for page in range(1, 100):
        got = search(conn, criteria, "departure_date", descending, page, size, today=TODAY)
        out += [r.dossier_number for r in got.rows]
        if len(got.rows) < size:
            return out
    raise AssertionError("more pages than dossiers")


CASES: list[dict[str, Any]] = [
    {"client_name": "martinn"},  # a typo: four near names match
    {"client_name": "mart"},  # the start of a name
    {"client_name": "martin", "statuses": ("confirmed", "option")},
    {"client_name": "dupont jean", "departure_from": date(2026, 11, 5), "departure_to": date(2026, 11, 20)},
    {"destination": "lisbo"},  # two destinations
    {"destination": "seville", "statuses": ("cancelled",)},
    {"destination": "lisb", "client_name": "durand"},
]


@pytest.mark.parametrize("descending", [False, True])
def test_every_page_of_a_term_search_is_the_sorted_matches(db: sa.Engine, descending: bool) -> None:
    _dossiers(db, 400)
    with db.connect() as conn:
        for case in CASES:
            criteria = SearchCriteria(**case)
            expected = _expected(conn, criteria, descending)
            assert len(expected) > 14, case  # several pages, so the merge across terms is exercised
            assert _paged(conn, criteria, descending, 7) == expected, case


def test_a_name_search_reads_each_name_in_page_order(db: sa.Engine) -> None:
    """With the index of migration 0026 each name's dossiers come out in departure order: no sort
    of a name's matches, and at most `offset + limit` of them read."""
    _dossiers(db, 400)
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        captured.append((statement, parameters))

    with db.connect() as conn:
        conn.execute(sa.text("ANALYZE app.dossiers"))
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        sa.event.listen(conn, "before_cursor_execute", capture)
        search(conn, SearchCriteria(client_name="martinn"), page=2, page_size=10, today=TODAY)
        sa.event.remove(conn, "before_cursor_execute", capture)
        statement, parameters = captured[0]
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
        plan = cursor.fetchone()[0][0]["Plan"]
        conn.rollback()

    def nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
        return [node, *(n for child in node.get("Plans", []) for n in nodes(child))]

    # The page's numbers (the count beside them reads up to the cap, by the same index).
    (page,) = [n for n in nodes(plan) if n.get("Subplan Name") == "CTE page"]
    scans = [n for n in nodes(page) if n.get("Index Name") == "dossiers_client_name_departure"]
    assert scans, plan
    for scan in scans:
        assert scan["Actual Rows"] <= 20  # offset 10 + limit 10 per name, not every dossier of the name
    limits = [n for n in nodes(page) if n["Node Type"] == "Limit" and scans[0] in nodes(n)]
    assert limits and all(n["Node Type"] != "Sort" for n in nodes(limits[-1])), plan
