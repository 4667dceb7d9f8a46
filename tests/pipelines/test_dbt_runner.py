"""run_dbt, as the UI tests use it: dbt against the current DATABASE_URL, failures explained."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from backoffice.dbt_runner import DbtFailed, run_dbt
from backoffice.ingest import load_bookings_day

LANDING = Path(__file__).parents[1] / "fixtures" / "landing"


def test_run_dbt_builds_the_mart_on_the_current_database(db: Engine) -> None:
    load_bookings_day(date(2026, 11, 25), LANDING, db)

    run_dbt(["run", "--select", "+dossier_price_lines"])

    with db.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM marts.dossier_price_lines")).scalar_one()
    assert count == 4


def test_run_dbt_failure_names_the_reason(database_url: str) -> None:
    missing = make_url(database_url).set(database="no_such_database").render_as_string(hide_password=False)

    with pytest.raises(DbtFailed, match=r'dbt build failed: .*database "no_such_database" does not exist'):
        run_dbt(["build"], missing)
