"""Closed periods at the service boundary and in the database, against the real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import factories as f
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.db.engine import get_engine
from backoffice.domain.clock import accounting_today
from backoffice.domain.errors import InvalidInput, PermissionDenied
from backoffice.domain.periods import PERIOD_CLOSED_SQLSTATE, PeriodClosed
from backoffice.domain.permissions import Actor
from backoffice.services.payments import record_payment
from backoffice.services.periods import (
    close_period,
    closed_period_of,
    list_closed_periods,
    next_open_day,
)
from backoffice.services.unit_of_work import UnitOfWork

ACCOUNTANT = Actor("compta", "accountant", frozenset({"close_period", "record_payment"}))
AGENT = Actor("agent1", "agent", frozenset({"record_payment"}))
TODAY = date(2026, 5, 20)


def _key() -> str:
    return uuid.uuid4().hex


def _close(db: Engine, granularity: str, period: Any, who: Actor = ACCOUNTANT, key: str | None = None) -> Any:
    with UnitOfWork(db) as uow:
        return close_period(
            uow, who, granularity=granularity, period=period, idempotency_key=key or _key(), today=TODAY
        )


def _events(db: Engine, action: str) -> list[sa.Row]:
    with db.connect() as conn:
        return conn.execute(
            sa.text("SELECT actor, outcome, detail, after FROM audit.events WHERE action = :a ORDER BY id"),
            {"a": action},
        ).all()


def test_an_accountant_closes_a_month_once_and_it_is_audited(db: Engine) -> None:
    key = _key()
    closed = _close(db, "month", "2026-02", key=key)
    assert (closed.granularity, closed.period_start, closed.period_end) == (
        "month",
        date(2026, 2, 1),
        date(2026, 2, 28),
    )
    assert closed.closed_by == "compta" and closed.label == "2026-02"
    assert _close(db, "month", "2026-02", key=key) == closed  # a replayed form: one closing
    with pytest.raises(InvalidInput, match="period: the month 2026-02 is already closed"):
        _close(db, "month", "2026-02")
    _close(db, "year", "2025")
    _close(db, "day", date(2026, 5, 19))
    with db.connect() as conn:
        assert [p.label for p in list_closed_periods(conn)] == ["2025", "2026-02", "2026-05-19"]
        assert closed_period_of(conn, date(2025, 7, 14)).granularity == "year"
        assert closed_period_of(conn, date(2026, 3, 1)) is None
        assert next_open_day(conn, date(2026, 2, 10)) == date(2026, 3, 1)
        assert next_open_day(conn, date(2025, 12, 31)) == date(2026, 1, 1)
    events = _events(db, "close_period")
    assert [e.outcome for e in events] == ["done", "refused", "done", "done"]
    assert events[0].after["period_end"] == "2026-02-28" and "already closed" in events[1].detail


@pytest.mark.parametrize(
    ("granularity", "period", "field", "problem"),
    [
        ("week", "2026-02", "granularity", "is not one of day, month, year"),
        ("month", "2026-13", "period", "is not a real month"),
        ("month", "February", "period", "write it like 2026-03"),
        ("day", "2026-02-30", "period", "is not a real day"),
        ("month", "2026-05", "period", "2026-05 is not over yet"),
        ("day", "2026-05-20", "period", "2026-05-20 is not over yet"),
        ("year", 2025, "period", "is not a year"),
    ],
)
def test_a_bad_or_unfinished_period_is_refused_naming_the_field(
    db: Engine, granularity: str, period: Any, field: str, problem: str
) -> None:
    with pytest.raises(InvalidInput, match=problem) as refused:
        _close(db, granularity, period)
    assert refused.value.field == field
    with db.connect() as conn:
        assert list_closed_periods(conn) == []
    assert [e.outcome for e in _events(db, "close_period")] == ["refused"]


def test_an_agent_may_not_close_a_period(db: Engine) -> None:
    with pytest.raises(PermissionDenied):
        _close(db, "month", "2026-02", who=AGENT)
    assert [(e.actor, e.outcome) for e in _events(db, "close_period")] == [("agent1", "refused")]
    with db.connect() as conn:
        granted = set(
            conn.execute(sa.text("SELECT role FROM app.role_permissions WHERE permission = 'close_period'")).scalars()
        )
    assert granted == {"accountant", "admin"}


def test_a_payment_dated_in_a_closed_period_is_refused_and_the_next_open_day_takes_it(db: Engine) -> None:
    yesterday = accounting_today() - timedelta(days=1)
    with UnitOfWork(db) as uow:
        close_period(uow, ACCOUNTANT, granularity="day", period=yesterday, idempotency_key=_key())
    number = f.dossier(db)
    arguments = {"dossier_number": number, "method": "cheque", "amount": "120.00", "expected_version": 1}
    refusal = f"received_on: {yesterday} is in the closed day {yesterday}"
    with pytest.raises(PeriodClosed, match=refusal), UnitOfWork(db) as uow:
        record_payment(uow, AGENT, **arguments, received_on=yesterday, idempotency_key=_key())
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.payments")).scalar() == 0
        open_day = next_open_day(conn, yesterday)
    assert [e.outcome for e in _events(db, "record_payment")] == ["refused"]
    with UnitOfWork(db) as uow:
        record_payment(uow, AGENT, **arguments, received_on=open_day, idempotency_key=_key())
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.payments")).scalar() == 1


POSTINGS = {
    "app.payments": """INSERT INTO app.payments (payment_id, dossier_number, received_at, method, amount, currency,
                           status) VALUES ('P-LATE', :dossier, :at, 'card', -10.00, 'EUR', 'refunded')""",
    "app.supplier_invoices": """INSERT INTO app.supplier_invoices (supplier_code, invoice_number, kind, invoice_date,
                                    currency, sha256, source_file) VALUES ('HOTEL01', 'F-LATE', 'invoice', :day, 'EUR',
                                    repeat('0', 64), 'late.csv')""",
    "app.write_offs": """INSERT INTO app.write_offs (dossier_number, supplier_code, amount, invoiced_amount,
                             expected_amount, currency, threshold, reason, created_by, created_at)
                         VALUES (:dossier, 'HOTEL01', 5.00, 105.00, 100.00, 'EUR', 10.00, 'late', 'compta', :at)""",
    "app.client_invoices": """INSERT INTO app.client_invoices (invoice_number, kind, brand, series, year, seq,
                                  issue_date, dossier_number, currency, total_amount, language, buyer, seller,
                                  xml_sha256, pdf_sha256, pdf, issued_by)
                              VALUES ('X-FA-2026-000001', 'invoice', 'X', 'FA', 2026, 1, :day, :dossier, 'EUR', 10.00,
                                      'fr', '{}', '{}', repeat('0', 64), repeat('0', 64), '', 'compta')""",
}


@pytest.mark.parametrize("table", sorted(POSTINGS))
def test_the_database_refuses_any_posting_dated_in_a_closed_period(db: Engine, database_url: str, table: str) -> None:
    _close(db, "month", "2026-03")
    number = f.dossier(db)
    closed = {"dossier": number, "day": date(2026, 3, 31), "at": datetime(2026, 3, 31, 12, tzinfo=UTC)}
    # 22:30 UTC on 31 March is already 1 April in Paris, the accounting timezone: open.
    with get_engine(database_url).connect() as conn:
        conn.execute(
            sa.text(POSTINGS[table]),
            {**closed, "day": date(2026, 4, 1), "at": datetime(2026, 3, 31, 22, 30, tzinfo=UTC)},
        )
        conn.rollback()
    for engine in (get_engine(database_url), db):  # the application's role, and the owner too
        refusal = pytest.raises(sa.exc.DBAPIError, match="the month 2026-03-01 is closed")
        with refusal as refused, engine.begin() as conn:
            conn.execute(sa.text(POSTINGS[table]), closed)
        assert refused.value.orig.sqlstate == PERIOD_CLOSED_SQLSTATE
    # Through a unit of work, whatever the service: a domain error, not a database one.
    with pytest.raises(PeriodClosed, match="posting on 2026-03-31 refused"), UnitOfWork(db) as uow:
        uow.conn.execute(sa.text(POSTINGS[table]), closed)


def test_a_closing_is_final(db: Engine, database_url: str) -> None:
    _close(db, "month", "2026-02")
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), get_engine(database_url).begin() as conn:
        conn.execute(sa.text("DELETE FROM app.closed_periods"))
    with pytest.raises(sa.exc.IntegrityError, match="immutable"), db.begin() as conn:
        conn.execute(sa.text("UPDATE app.closed_periods SET period_end = '2026-02-01'"))
