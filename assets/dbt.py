"""The dbt project as Dagster assets; its tests run as asset checks."""

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from assets.partitions import daily, one_run_per_day
from backoffice.dbt_runner import DBT_EXECUTABLE, DBT_PROJECT_DIR
from pipelines.resources import Database, Dbt

MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
# The production build: models, seeds and data tests; unit tests are CI's (docs/dbt.md).
BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]
# The day of the week whose build checks every dossier's rows of the per-dossier views; the other
# days' builds check the dossiers changed since the last one (docs/dbt.md, "Daily checks").
FULL_CHECKS_WEEKDAY = 6  # Sunday


def build_args(day: date) -> list[str]:
    """The day's `dbt build` arguments: on FULL_CHECKS_WEEKDAY, every dossier's rows are checked,
    rows no write named included (a supplier's currency, a new rate, a date falling due)."""
    if day.weekday() != FULL_CHECKS_WEEKDAY:
        return list(BUILD_ARGS)
    return [*BUILD_ARGS, "--vars", json.dumps({"mart_checks_all": True})]


def _sources_changed_since(manifest: Path) -> bool:
    built = manifest.stat().st_mtime
    inputs = [
        DBT_PROJECT_DIR / "dbt_project.yml",
        *DBT_PROJECT_DIR.glob("models/**/*"),
        *DBT_PROJECT_DIR.glob("macros/**/*"),
    ]
    return any(path.stat().st_mtime > built for path in inputs)


def ensure_manifest() -> Path:
    """The asset graph is read from dbt's manifest: (re)parse when a model is newer than it.

    A full parse: partial parsing has kept stale source properties after a sources.yml edit.
    """
    if not MANIFEST.exists() or _sources_changed_since(MANIFEST):
        proc = subprocess.run(
            [
                str(DBT_EXECUTABLE),
                "--no-use-colors",
                "parse",
                "--no-partial-parse",
                "--project-dir",
                str(DBT_PROJECT_DIR),
                "--profiles-dir",
                str(DBT_PROJECT_DIR),
                "--target-path",
                str(MANIFEST.parent),
            ],
            cwd=DBT_PROJECT_DIR,
            capture_output=True,
            text=True,
            env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"dbt parse failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return MANIFEST


class Translator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Any) -> str | None:
        return "dbt"


@dbt_assets(
    manifest=ensure_manifest(),
    partitions_def=daily,
    backfill_policy=one_run_per_day,
    dagster_dbt_translator=Translator(settings=DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True)),
)
def dbt_models(context: dg.AssetExecutionContext, dbt: Dbt, database: Database) -> Iterator[Any]:
    """dbt build of the staging and marts views, with their tests as asset checks.

    Unit tests (`unit_tests:`, fixed inputs, they test the SQL not the day's data) run in `make
    test` (tests/pipelines/test_dbt_unit_tests.py), not in every production build (docs/dbt.md)."""
    with dbt.connected_to(database.resolved_url()):
        args = build_args(date.fromisoformat(context.partition_key))
        yield from dbt.cli(args, context=context).stream()
