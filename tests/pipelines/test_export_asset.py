"""The `accounting_export` asset through Dagster's `materialize`, on entries dbt posted from real
payments, and dbt's full refresh of the entries keeping what the export recorded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import factories as f
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assets.export import accounting_export
from backoffice.config import get_settings
from backoffice.dbt_runner import run_dbt
from pipelines.resources import Database
from pipelines.run import PipelineSummary
from pipelines.run import _add as add_to_summary

DAY = date(2026, 3, 14)


@pytest.fixture
def export_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("BACKOFFICE_EXPORT_DIR", str(tmp_path))
    monkeypatch.setenv("BACKOFFICE_SIREN", "123456789")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def materialize(database_url: str, summary: PipelineSummary) -> dict[str, object]:
    result = dg.materialize(
        [accounting_export], partition_key=DAY.isoformat(), resources={"database": Database(url=database_url)}
    )
    assert result.success
    add_to_summary(summary, result)
    [event] = result.get_asset_materialization_events()
    return {name: value.value for name, value in event.materialization.metadata.items()}


def exported_in(db: Engine) -> list[tuple[str, int, str | None]]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT DISTINCT journal_code, entry_number, exported_in FROM marts.accounting_entries ORDER BY 1, 2"
            )
        )
        return [tuple(r) for r in rows]


def test_the_asset_exports_the_day_and_a_full_refresh_keeps_exported_in(
    db: Engine, database_url: str, export_dir: Path
) -> None:
    f.build_accounting_entries_mart(database_url)  # once per test database: seeds, parent views, the table
    number = f.dossier(db)
    for hour in (9, 15):
        at = datetime(2026, 3, 14, hour, tzinfo=UTC)
        f.payment(db, number, f"{hour}0.00", received_at=at, created_at=at)
    run_dbt(["run", "--select", "accounting_entries"], database_url=database_url)  # posts the new payments

    summary = PipelineSummary(DAY, DAY)
    first = materialize(database_url, summary)
    assert (first["export_id"], first["entries"], first["lines"], first["rerun"]) == ("EXP-20260314", 2, 4, False)
    assert first["totals"] == {"BQ": {"entries": 2, "lines": 4, "debit": "240.00", "credit": "240.00"}}
    folder = export_dir / "2026-03-14"
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert "123456789FEC20260314.txt" in files
    assert summary.lines()[-2] == f"  export EXP-20260314: 2 entries, 4 lines in {folder}"
    assert exported_in(db) == [("BQ", 1, "EXP-20260314"), ("BQ", 2, "EXP-20260314")]

    run_dbt(["run", "--select", "accounting_entries", "--full-refresh"], database_url=database_url)
    assert exported_in(db) == [("BQ", 1, "EXP-20260314"), ("BQ", 2, "EXP-20260314")]
    again = materialize(database_url, summary)
    assert again["rerun"] is True
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
