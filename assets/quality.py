"""Data-quality asset checks shared by the ingest assets: the source's Great Expectations suite
and its rejection rate, run on the partition the asset has just loaded.

Both are blocking: a failed check stops dbt from building on a bad day. The rejection rate only
warns between checks.partition.WARN_RATE and FAIL_RATE, so a few bad records do not stop the day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import dagster as dg
from sqlalchemy.engine import Engine

from checks.partition import FAIL_MIN_REJECTED, FAIL_RATE, WARN_RATE, rejection_rate, run_suite


def check_specs(asset_key: list[str], suite: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            f"{suite}_expectations",
            asset=asset_key,
            blocking=True,
            description=f"Great Expectations suite '{suite}' on the rows loaded for the partition.",
        ),
        dg.AssetCheckSpec(
            "rejection_rate",
            asset=asset_key,
            blocking=True,
            description=(
                f"Rejected records of the day: warns above {WARN_RATE:.0%}, fails above {FAIL_RATE:.0%}"
                f" once {FAIL_MIN_REJECTED} are rejected."
            ),
        ),
    ]


def check_results(
    context: dg.AssetExecutionContext, engine: Engine, asset_key: list[str], suite: str, source: str, day: date
) -> Iterator[dg.AssetCheckResult]:
    """The checks' results, for those selected in this run (a job may leave checks out)."""
    selected = {key.name for key in context.selected_asset_check_keys}
    if f"{suite}_expectations" in selected:
        yield _suite_result(engine, asset_key, suite, day)
    if "rejection_rate" in selected:
        yield _rate_result(engine, asset_key, source, day)


def _suite_result(engine: Engine, asset_key: list[str], suite: str, day: date) -> dg.AssetCheckResult:
    outcome = run_suite(engine, suite, day)
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=f"{suite}_expectations",
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=outcome.metadata(),
    )


def _rate_result(engine: Engine, asset_key: list[str], source: str, day: date) -> dg.AssetCheckResult:
    rate = rejection_rate(engine, source, day)
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name="rejection_rate",
        passed=rate.severity == "ok",
        severity=dg.AssetCheckSeverity.ERROR if rate.severity == "fail" else dg.AssetCheckSeverity.WARN,
        metadata={"loaded": rate.loaded, "rejected": rate.rejected, "rate": round(rate.rate, 4)},
    )
