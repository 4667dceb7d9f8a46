"""Dossier search against a real PostgreSQL: each filter returns exactly the dossiers it should."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import factories as f
import pytest
import sqlalchemy as sa

from backoffice.domain.clock import accounting_today
from backoffice.domain.errors import InvalidInput
from backoffice.queries.search import SearchCriteria, search


def found(engine: sa.Engine, **criteria: object) -> set[str]:
    with engine.connect() as conn:
        page = search(conn, SearchCriteria(**criteria), page_size=200)
    assert page.total == len(page.rows)
    return {r.dossier_number for r in page.rows}


def test_no_criteria_returns_everything(db: sa.Engine) -> None:
    numbers = {f.dossier(db), f.dossier(db)}
    assert found(db) == numbers


@pytest.mark.parametrize("typed", ["Dupont", "dupond", "DUPONT Jean", "jean dupont", "Dupônt", "dup"])
def test_client_name_tolerates_case_accents_order_and_typos(db: sa.Engine, typed: str) -> None:
    jean = f.dossier(db, client_first_name="Jean", client_last_name="Dupont")
    f.dossier(db, client_first_name="Marie", client_last_name="Durand")
    f.dossier(db, client_first_name="Jeanne", client_last_name="Lefebvre")
    assert found(db, client_name=typed) == {jean}


def test_client_name_matches_accented_names_typed_without_accents(db: sa.Engine) -> None:
    helene = f.dossier(db, client_first_name="Hélène", client_last_name="Gérard")
    f.dossier(db, client_first_name="Paul", client_last_name="Martin")
    assert found(db, client_name="helene gerard") == {helene}


def test_email_matches_whole_or_part_case_insensitively(db: sa.Engine) -> None:
    anna = f.dossier(db, client_email="Anna.Smith@Example.org")
    f.dossier(db, client_email="bob@example.com")
    assert found(db, email="anna.smith@example.org") == {anna}
    assert found(db, email="example.org") == {anna}


def test_email_wildcards_are_taken_literally(db: sa.Engine) -> None:
    f.dossier(db, client_email="ab@example.com")
    underscore = f.dossier(db, client_email="a_b@example.com")
    assert found(db, email="a_b") == {underscore}


def test_dossier_number_exact_or_prefix(db: sa.Engine) -> None:
    a = f.dossier(db, dossier_number="BK-2026-000501")
    b = f.dossier(db, dossier_number="BK-2026-000502")
    f.dossier(db, dossier_number="BK-2025-000501")
    assert found(db, dossier_number="BK-2026-000501") == {a}
    assert found(db, dossier_number="bk-2026-0005") == {a, b}


def test_supplier_code_and_reference(db: sa.Engine) -> None:
    flight = f.dossier(db, services=[{"kind": "flight", "supplier_code": "AIR01", "supplier_reference": "PNR7XK"}])
    hotel = f.dossier(db, services=[{"supplier_code": "HOTEL01", "supplier_reference": "H-123"}])
    assert found(db, supplier_code="AIR01") == {flight}
    assert found(db, supplier_reference="pnr7xk") == {flight}
    assert found(db, supplier_reference="H-123") == {hotel}
    assert found(db, supplier_code="AIR01", supplier_reference="H-123") == set()


def test_booking_date_range_includes_both_end_days(db: sa.Engine) -> None:
    def at(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)

    start = date(2026, 3, 1)
    before = f.dossier(db, created_at=at(start - timedelta(days=1)))
    first = f.dossier(db, created_at=at(start))
    last = f.dossier(db, created_at=datetime(2026, 3, 10, 23, 59, tzinfo=UTC))
    after = f.dossier(db, created_at=at(date(2026, 3, 11)))
    assert found(db, created_from=start, created_to=date(2026, 3, 10)) == {first, last}
    assert found(db, created_to=start) == {before, first}
    assert found(db, created_from=date(2026, 3, 11)) == {after}


def test_departure_date_range(db: sa.Engine) -> None:
    june = f.dossier(db, departure_date=date(2027, 6, 15))
    f.dossier(db, departure_date=date(2027, 7, 1))
    f.dossier(db, departure_date=date(2027, 5, 31))
    assert found(db, departure_from=date(2027, 6, 1), departure_to=date(2027, 6, 30)) == {june}


def test_sale_amount_range_is_inclusive(db: sa.Engine) -> None:
    low = f.dossier(db, sale_total="500.00")
    mid = f.dossier(db, sale_total="1500.50")
    f.dossier(db, sale_total="3000.01")
    assert found(db, amount_min=Decimal("500"), amount_max=Decimal("3000")) == {low, mid}
    assert found(db, amount_min="1500.50") == {mid} | found(db, amount_min="3000.01")


def test_status_brand_and_departure_window_combine(db: sa.Engine) -> None:
    hit = f.dossier(db, status="option", brand="Soleil", departure_date=accounting_today() + timedelta(days=5))
    f.dossier(db, status="confirmed", brand="Soleil", departure_date=accounting_today() + timedelta(days=5))
    f.dossier(db, status="option", brand="Neige", departure_date=accounting_today() + timedelta(days=5))
    f.dossier(db, status="option", brand="Soleil", departure_date=accounting_today() + timedelta(days=20))
    f.dossier(db, status="option", brand="Soleil", departure_date=accounting_today() - timedelta(days=1))
    assert found(db, statuses=("option",), brands=("Soleil",), departure_within_days=7) == {hit}


def test_channel_and_destination(db: sa.Engine) -> None:
    agency = f.dossier(db, channel="agency", destination="Marrakech")
    f.dossier(db, channel="web", destination="Marrakech")
    assert found(db, channels=("agency",)) == {agency}
    assert found(db, destination="marrakech", channels=("agency", "web")) == found(db, destination="MARRA")


def test_balance_unpaid_compares_what_fell_due_with_what_was_paid(db: sa.Engine) -> None:
    past, future = accounting_today() - timedelta(days=3), accounting_today() + timedelta(days=30)
    unpaid = f.dossier(db, schedule=[{"due_date": past, "amount": "300.00"}])
    paid = f.dossier(db, schedule=[{"due_date": past, "amount": "300.00"}])
    f.payment(db, paid, "300.00")
    failed = f.dossier(db, schedule=[{"due_date": past, "amount": "300.00"}])
    f.payment(db, failed, "300.00", status="failed")
    refunded = f.dossier(db, schedule=[{"due_date": past, "amount": "300.00"}])
    f.payment(db, refunded, "300.00")
    f.payment(db, refunded, "-100.00", status="refunded")
    f.dossier(db, schedule=[{"due_date": future, "amount": "700.00"}])
    assert found(db, balance_unpaid=True) == {unpaid, failed, refunded}


def test_updated_within_days(db: sa.Engine) -> None:
    recent = f.dossier(db, updated_at=datetime.now(UTC) - timedelta(days=1))
    f.dossier(db, updated_at=datetime.now(UTC) - timedelta(days=10))
    assert found(db, updated_within_days=3) == {recent}


def test_pagination_and_sort(db: sa.Engine) -> None:
    amounts = ["300.00", "100.00", "500.00", "200.00", "400.00"]
    by_amount = {a: f.dossier(db, sale_total=a) for a in amounts}
    with db.connect() as conn:
        first = search(conn, SearchCriteria(), sort="sale_total", descending=True, page=1, page_size=2)
        second = search(conn, SearchCriteria(), sort="sale_total", descending=True, page=2, page_size=2)
        third = search(conn, SearchCriteria(), sort="sale_total", descending=True, page=3, page_size=2)
        beyond = search(conn, SearchCriteria(), sort="sale_total", page=9, page_size=2)
    assert [r.sale_total for r in first.rows] == [Decimal("500.00"), Decimal("400.00")]
    assert [r.dossier_number for r in second.rows] == [by_amount["300.00"], by_amount["200.00"]]
    assert [r.dossier_number for r in third.rows] == [by_amount["100.00"]]
    assert (first.total, third.total, first.page_count) == (5, 5, 3)
    assert beyond.rows == () and beyond.total == 5


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sort": "sale_total; DROP TABLE app.dossiers"}, "sort"),
        ({"page": 0}, "page"),
        ({"page_size": 1000}, "page_size"),
        ({"criteria": SearchCriteria(statuses=("lost",))}, "statuses"),
        ({"criteria": SearchCriteria(channels=("fax",))}, "channels"),
        ({"criteria": SearchCriteria(amount_min="12.345")}, "amount_min"),
        ({"criteria": SearchCriteria(amount_min="abc")}, "amount_min"),
        ({"criteria": SearchCriteria(amount_min=Decimal("10"), amount_max=Decimal("5"))}, "amount_max"),
        ({"criteria": SearchCriteria(departure_from=date(2026, 2, 1), departure_to=date(2026, 1, 1))}, "departure_to"),
        ({"criteria": SearchCriteria(departure_within_days=-1)}, "departure_within_days"),
        ({"criteria": SearchCriteria(updated_within_days=10**6)}, "updated_within_days"),
        ({"criteria": SearchCriteria(client_name="x" * 500)}, "client_name"),
    ],
)
def test_invalid_input_names_the_field(db: sa.Engine, kwargs: dict[str, object], field: str) -> None:
    arguments = {"criteria": SearchCriteria(), **kwargs}
    with db.connect() as conn, pytest.raises(InvalidInput) as error:
        search(conn, **arguments)
    assert error.value.field == field
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.dossiers")).scalar_one() == 0


def test_a_renamed_client_is_found_by_the_new_name_only(db: sa.Engine) -> None:
    """The search terms follow updates (a statement-level trigger); an orphaned term matches nothing."""
    number = f.dossier(db, client_first_name="Jean", client_last_name="Dupont", client_email="jd@example.com")
    with db.begin() as conn:
        conn.execute(
            sa.text(
                """UPDATE app.dossiers SET client_last_name = 'Leclerc', client_email = 'jl@example.org',
                          destination = 'Ouarzazate' WHERE dossier_number = :n"""
            ),
            {"n": number},
        )
    assert found(db, client_name="leclerk") == {number}
    assert found(db, email="jl@example") == {number}
    assert found(db, destination="ouarza") == {number}
    assert found(db, client_name="dupont") == set()
    assert found(db, email="jd@") == set()
    with db.begin() as conn:
        assert conn.execute(sa.text("SELECT app.prune_search_terms()")).scalar_one() >= 2
        terms = set(conn.execute(sa.text("SELECT kind, term FROM app.search_terms")).tuples())
    assert ("name", "leclerc jean") in terms and ("name", "dupont jean") not in terms
    assert ("email", "jl@example.org") in terms and ("email", "jd@example.com") not in terms
    assert ("destination", "Ouarzazate") in terms


def test_dossiers_copied_in_bulk_are_searchable(db: sa.Engine) -> None:
    """COPY (as the bulk loaders write) fires the statement trigger too: one set-based insert of the terms."""
    rows = "\n".join(
        f"BK-COPY-{i:03d}\t1\tconfirmed\tweb\tSoleil\tEUR\t2027-01-10\t2027-01-17\tLisbonne\tPT\tCL{i}\t"
        f"Zoé\tMartín{i % 3}\tz{i}@example.pt\t2026-01-01 10:00+00\t2026-01-01 10:00+00"
        for i in range(30)
    )
    with db.begin() as conn:
        cur = conn.connection.driver_connection.cursor()
        with cur.copy(
            """COPY app.dossiers (dossier_number, platform_version, status, channel, brand, currency, departure_date,
               return_date, destination, destination_country, client_id, client_first_name, client_last_name,
               client_email, created_at, updated_at) FROM STDIN"""
        ) as copy:
            copy.write(rows + "\n")
    assert len(found(db, client_name="martin zoe")) == 30
    with db.connect() as conn:
        names = set(conn.execute(sa.text("SELECT term FROM app.search_terms WHERE kind = 'name'")).scalars())
    assert names == {"martin0 zoe", "martin1 zoe", "martin2 zoe"}
    assert found(db, email="z7@example.pt") == {"BK-COPY-007"}
    assert len(found(db, destination="lisbon")) == 30


# ---------------------------------------------------------------- arrears (migration 0023)
REFERENCE_UNPAID = """
    SELECT d.dossier_number FROM app.dossiers d
    WHERE (SELECT coalesce(sum(ps.amount), 0) FROM app.payment_schedule ps
           WHERE ps.dossier_number = d.dossier_number AND ps.due_date <= :today)
        > (SELECT coalesce(sum(p.amount), 0) FROM app.dossier_payments p
           WHERE p.dossier_number = d.dossier_number AND p.status IN ('captured', 'refunded', 'chargeback'))"""


def unpaid_on(engine: sa.Engine, day: date) -> tuple[set[str], set[str]]:
    """The dossiers `balance_unpaid` finds on `day`, and those the two sums (the definition) name."""
    with engine.connect() as conn:
        page = search(conn, SearchCriteria(balance_unpaid=True), page_size=200, today=day)
        reference = set(conn.execute(sa.text(REFERENCE_UNPAID), {"today": day}).scalars())
    return {r.dossier_number for r in page.rows}, reference


def test_balance_unpaid_is_the_two_sums_on_every_day_whatever_the_schedule(db: sa.Engine) -> None:
    """The kept arrears equal the definition on each day around every due date: several lines a
    day, negative lines, refunds beyond what was due, failed payments, attributions."""
    day = date(2027, 3, 10)
    d1, d2, d3 = day, day + timedelta(days=5), day + timedelta(days=9)
    plain = f.dossier(db, schedule=[{"due_date": d1, "amount": "300.00"}, {"due_date": d3, "amount": "700.00"}])
    f.payment(db, plain, "300.00")
    same_day = f.dossier(db, schedule=[{"due_date": d2, "amount": "100.00"}, {"due_date": d2, "amount": "50.00"}])
    f.payment(db, same_day, "120.00")
    credit = f.dossier(
        db,
        schedule=[
            {"due_date": d1, "amount": "500.00"},
            {"due_date": d2, "amount": "-300.00", "kind": "instalment"},
            {"due_date": d3, "amount": "100.00", "kind": "balance"},
        ],
    )
    f.payment(db, credit, "250.00")
    overrefunded = f.dossier(db, schedule=[{"due_date": d3, "amount": "100.00"}])
    pid = f.payment(db, overrefunded, "100.00")
    f.payment(db, overrefunded, "-150.00", status="refunded", origin="refund", refund_of=pid)
    failed = f.dossier(db, schedule=[{"due_date": d1, "amount": "80.00"}])
    f.payment(db, failed, "80.00", status="failed")
    nothing_due = f.dossier(db)
    # A payment that named the wrong dossier, attributed by an agent to the right one.
    wrong = f.dossier(db, schedule=[{"due_date": d2, "amount": "60.00"}])
    right = f.dossier(db, schedule=[{"due_date": d2, "amount": "60.00"}])
    misnamed = f.payment(db, wrong, "60.00")
    with db.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.payment_attributions (payment_id, dossier_number, reason, attributed_by)
                   VALUES (:p, :d, 'named the wrong dossier', 'test')"""
            ),
            {"p": misnamed, "d": right},
        )
    days = [d + timedelta(days=k) for d in (d1, d2, d3) for k in (-1, 0, 1)] + [date(2000, 1, 1), date(2100, 1, 1)]
    for on in days:
        got, expected = unpaid_on(db, on)
        assert got == expected, on
    assert unpaid_on(db, d3)[0] == {plain, same_day, credit, overrefunded, failed, wrong}
    assert unpaid_on(db, d1 - timedelta(days=1))[0] == {overrefunded}  # refunded beyond anything due
    assert nothing_due not in unpaid_on(db, date(2100, 1, 1))[0]


def test_arrears_follow_schedule_changes_payments_and_bulk_copies(db: sa.Engine) -> None:
    number = f.dossier(db, schedule=[{"due_date": accounting_today() - timedelta(days=1), "amount": "200.00"}])
    assert found(db, balance_unpaid=True) == {number}
    with db.begin() as conn:
        conn.execute(
            sa.text("UPDATE app.payment_schedule SET due_date = due_date + 10 WHERE dossier_number = :n"), {"n": number}
        )
    assert found(db, balance_unpaid=True) == set()
    with db.begin() as conn:
        conn.execute(
            sa.text("UPDATE app.payment_schedule SET due_date = due_date - 10 WHERE dossier_number = :n"), {"n": number}
        )
    f.payment(db, number, "200.00")
    assert found(db, balance_unpaid=True) == set()
    with db.begin() as conn:
        conn.execute(sa.text("DELETE FROM app.payment_schedule WHERE dossier_number = :n"), {"n": number})
        conn.execute(
            sa.text(
                """INSERT INTO app.payment_schedule (dossier_number, seq, due_date, amount, kind, method)
                   VALUES (:n, 1, :due, 150.00, 'deposit', 'card_on_file'),
                          (:n, 2, :due, 100.00, 'balance', 'card_on_file')"""
            ),
            {"n": number, "due": accounting_today()},
        )
    assert found(db, balance_unpaid=True) == {number}  # 250 due, 200 paid
    # COPY, as the bulk loaders write: one refresh for the whole statement.
    others = [f.dossier(db) for _ in range(3)]
    with db.begin() as conn:
        cur = conn.connection.driver_connection.cursor()
        with cur.copy(
            "COPY app.payment_schedule (dossier_number, seq, due_date, amount, kind, method) FROM STDIN"
        ) as c:
            c.write("".join(f"{n}\t1\t{accounting_today()}\t90.00\tdeposit\tcard_on_file\n" for n in others))
    assert found(db, balance_unpaid=True) == {number, *others}
    with db.connect() as conn:
        kept = conn.execute(sa.text("SELECT count(*) FROM app.dossier_arrears")).scalar_one()
    assert kept == 4
    # The arrears row's copy of the departure follows the dossier's: departure-bounded searches stay exact.
    for days, expected in ((5, {number}), (40, set()), (0, {number})):
        with db.begin() as conn:
            conn.execute(
                sa.text("UPDATE app.dossiers SET departure_date = :d WHERE dossier_number = :n"),
                {"d": accounting_today() + timedelta(days=days), "n": number},
            )
        assert found(db, balance_unpaid=True, departure_within_days=14) - set(others) == expected
        window = {
            "departure_from": accounting_today() + timedelta(days=days),
            "departure_to": accounting_today() + timedelta(days=days),
        }
        assert found(db, balance_unpaid=True, **window) - set(others) == {number}


# ---------------------------------------------------------------- capped totals
def _many(engine: sa.Engine, count: int, brand: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.dossiers (dossier_number, platform_version, status, channel, brand, currency,
                       departure_date, return_date, destination, destination_country, client_id,
                       client_first_name, client_last_name, client_email, created_at, updated_at)
                   SELECT 'BK-MANY-' || lpad(i::text, 5, '0'), 1, 'confirmed', 'web', :brand, 'EUR',
                          DATE '2027-01-01' + i % 90, DATE '2027-01-08' + i % 90, 'Lisbonne', 'PT', 'CL' || i,
                          'Zoé', 'Martin', 'z' || i || '@example.pt', now(), now()
                   FROM generate_series(1, :count) AS i"""
            ),
            {"brand": brand, "count": count},
        )


def test_a_total_past_the_cap_is_a_lower_bound_and_the_pages_stay_exact(db: sa.Engine) -> None:
    from backoffice.queries.search import COUNT_CAP

    _many(db, COUNT_CAP + 60, "Soleil")
    _many_small = [f.dossier(db, brand="Neige") for _ in range(3)]
    with db.connect() as conn:
        first = search(conn, SearchCriteria(brands=("Soleil",)), sort="dossier_number", page_size=50)
        last_full = search(conn, SearchCriteria(brands=("Soleil",)), sort="dossier_number", page=21, page_size=50)
        tail = search(conn, SearchCriteria(brands=("Soleil",)), sort="dossier_number", page=22, page_size=50)
        small = search(conn, SearchCriteria(brands=("Neige",)), page_size=50)
        exact_cap = search(conn, SearchCriteria(brands=("Soleil",)), sort="dossier_number", page=1, page_size=200)
    assert (first.total, first.total_exact) == (COUNT_CAP, False)  # "more than 1,000"
    assert first.page_count == COUNT_CAP // 50 + 1  # the next page stays reachable
    assert [r.dossier_number for r in first.rows][:2] == ["BK-MANY-00001", "BK-MANY-00002"]
    # Past the cap the count reaches the page asked for: page 21 of 50 rows is still full.
    assert (last_full.total, last_full.total_exact) == (1050, False)
    assert last_full.rows[0].dossier_number == "BK-MANY-01001"
    # The last page knows the exact total from its own rows.
    assert (tail.total, tail.total_exact, len(tail.rows)) == (COUNT_CAP + 60, True, 10)
    assert tail.page_count == tail.page
    assert (small.total, small.total_exact, small.page_count) == (3, True, 1)
    assert {r.dossier_number for r in small.rows} == set(_many_small)
    assert exact_cap.total_exact is False and len(exact_cap.rows) == 200


def test_the_liste_shows_a_capped_total_as_a_lower_bound(db: sa.Engine) -> None:
    """The Liste (AppTest) says "Plus de 1 000 dossiers" and still turns to the next page."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from backoffice.queries.search import COUNT_CAP

    st.cache_data.clear()
    f.user(db, "alice", "agent", f.PASSWORD, locale="fr")
    _many(db, COUNT_CAP + 60, "Soleil")
    at = AppTest.from_file(f.APP_SCRIPT, default_timeout=30).run()
    at.text_input(key="w_login").input("alice")
    at.text_input(key="w_password").input(f.PASSWORD)
    at = at.button[0].click().run()
    assert not at.exception and not at.error
    captions = [c.value for c in at.caption]
    assert "Plus de 1\u202f000 dossiers · page 1" in captions, captions
    at.button(key="w_next").click().run()
    assert "Plus de 1\u202f000 dossiers · page 2" in [c.value for c in at.caption]
    shown = list(at.dataframe[0].value["Dossier"])
    with db.connect() as conn:
        second = search(conn, SearchCriteria(), page=2, page_size=len(shown))
    assert shown == [r.dossier_number for r in second.rows]
