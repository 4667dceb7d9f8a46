"""The `charge_balances` asset through Dagster's `materialize`: the partition's day is the day charged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import dagster as dg
import factories as f
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assets.balances import charge_balances
from backoffice.config import get_settings
from pipelines.resources import Database
from pipelines.run import PipelineSummary
from pipelines.run import _add as add_to_summary

DAY = date(2026, 11, 25)


@pytest.fixture
def no_random_declines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("BACKOFFICE_PROVIDER_DECLINE_RATE", "0")
    monkeypatch.setenv("BACKOFFICE_BALANCE_RETRY_DAYS", "[2]")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def materialize(day: date, database_url: str, summary: PipelineSummary | None = None) -> dict[str, object]:
    result = dg.materialize(
        [charge_balances], partition_key=day.isoformat(), resources={"database": Database(url=database_url)}
    )
    assert result.success
    if summary is not None:
        add_to_summary(summary, result)
    [event] = result.get_asset_materialization_events()
    assert event.materialization.asset_key == dg.AssetKey(["app", "balance_charge_attempts"])
    return {name: value.value for name, value in event.materialization.metadata.items()}


def test_the_asset_charges_what_falls_due_on_its_day_and_reports_it(
    db: Engine, database_url: str, no_random_declines: None
) -> None:
    f.dossier(db, schedule=[{"due_date": DAY, "amount": "700.00", "kind": "balance"}])
    declined = f.dossier(db, schedule=[{"due_date": DAY, "amount": "250.13", "kind": "balance"}])
    later = f.dossier(db, schedule=[{"due_date": DAY + timedelta(days=1), "amount": "80.00", "kind": "balance"}])

    summary = PipelineSummary(DAY, DAY)
    first = materialize(DAY, database_url, summary)
    assert first == {
        "charged": 1,
        "declined": 1,
        "given_up": 0,
        "settled_from_earlier_runs": 0,
        "left_pending": 0,
        "charged_EUR": "700.00",
        "declined_EUR": "250.13",
    }
    # What `backoffice pipeline run` prints of it.
    assert summary.lines()[-1] == "  balances: 1 charged (700.00 EUR), 1 declined, 0 given up"
    assert summary.models_built == 0
    assert materialize(DAY, database_url)["charged"] == 0  # the same day again: nothing twice
    # Next day: `later` falls due; the decline waits for its retry day (BACKOFFICE_BALANCE_RETRY_DAYS).
    assert materialize(DAY + timedelta(days=1), database_url)["charged_EUR"] == "80.00"
    third = materialize(DAY + timedelta(days=2), database_url)
    assert (third["declined"], third["given_up"]) == (1, 1)
    with db.connect() as conn:
        charged = conn.execute(
            sa.text("SELECT dossier_number, amount FROM app.payments WHERE origin = 'automatic_charge' ORDER BY 1")
        ).all()
        tries = conn.execute(
            sa.text("SELECT attempted_on FROM app.balance_charge_attempts WHERE dossier_number = :n ORDER BY 1"),
            {"n": declined},
        ).scalars()
        assert [d - DAY for d in tries] == [timedelta(0), timedelta(days=2)]
    assert len(charged) == 2 and (later, Decimal("80.00")) in charged
