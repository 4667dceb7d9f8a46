"""Concurrent sessions on overlapping dossiers (bench/load.py): zero lost updates, zero duplicates,
errors only of the expected, explained kinds. `make bench` runs the same generator longer."""

from __future__ import annotations

from collections.abc import Iterator

import factories as f
import pytest
import sqlalchemy as sa

from backoffice.config import get_settings
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor
from bench import load


@pytest.fixture
def no_refund_approval(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("BACKOFFICE_REFUND_APPROVAL_THRESHOLD", "1000000.00")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_concurrent_sessions_lose_nothing_and_double_nothing(db: sa.Engine, database_url: str, no_refund_approval):
    f.build_price_lines_mart(database_url)
    f.invoice_seller(db)
    actors = []
    for i in range(8):
        login = f.user(db, f"s{i}", "senior_agent" if i % 2 else "accountant")
        with UnitOfWork(db) as uow:
            actors.append(load_actor(uow, login))
    dossiers = [f.dossier(db) for _ in range(5)]

    report = load.run(db, actors, dossiers, seconds=12)

    assert load.check(db, report) == {name: [] for name in [c.__name__ for c in load.CHECKS] + ["unexpected errors"]}
    # The run did collide and did get work through: otherwise it proves nothing.
    assert report.outcomes["payment: done"] > 5 and report.outcomes["adjustment: done"] > 0
    assert sum(n for k, n in report.outcomes.items() if k.endswith("StaleVersion")) > 0, report.outcomes
    # Every path locks a dossier's row before its arrears (migration 0024): no deadlock to retry.
    assert not [k for k in report.outcomes if k.endswith("ConcurrentConflict")], report.outcomes


@pytest.mark.soak
def test_twenty_sessions_for_two_minutes_lose_nothing(db: sa.Engine, database_url: str, no_refund_approval):
    """Issue 9's load: 20 concurrent sessions for 2 minutes on 10 overlapping dossiers (`make soak`)."""
    f.build_price_lines_mart(database_url)
    f.invoice_seller(db)
    actors = []
    for i in range(20):
        login = f.user(db, f"soak{i}", "senior_agent" if i % 2 else "accountant")
        with UnitOfWork(db) as uow:
            actors.append(load_actor(uow, login))
    dossiers = [f.dossier(db) for _ in range(10)]
    engine = sa.create_engine(database_url, pool_size=20, max_overflow=20)
    try:
        report = load.run(engine, actors, dossiers, seconds=120)
    finally:
        engine.dispose()

    assert load.check(db, report) == {name: [] for name in [c.__name__ for c in load.CHECKS] + ["unexpected errors"]}
    assert report.outcomes["payment: done"] > 100, report.outcomes
    assert not [k for k in report.outcomes if k.endswith("ConcurrentConflict")], report.outcomes
    print(f"20 sessions, 120 s: {report.actions} actions; outcomes {dict(report.outcomes)}")
