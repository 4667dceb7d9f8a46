"""The one shape of every ingest asset: load a day partition with a backoffice.ingest loader,
report the figures on each table it writes, then run the source's quality checks."""

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import dagster as dg
from sqlalchemy.engine import Engine

from assets.ingest_metadata import materialized
from assets.partitions import daily, one_run_per_day, retried_if_transient
from assets.quality import check_results, check_specs
from backoffice.ingest import IngestResult
from pipelines.resources import Database, LandingZone

Loader = Callable[[date, Path, Engine], IngestResult]


def daily_ingest(
    name: str, specs: list[dg.AssetSpec], load: Loader, description: str, suite: str | None = None
) -> dg.AssetsDefinition:
    """A daily-partitioned multi-asset over `specs`; `suite` (checks/suites.py) is checked on the
    first spec, the raw table, which holds what the day delivered."""
    checked = list(specs[0].key.path)
    checks = check_specs(checked, suite) if suite else []

    @dg.multi_asset(
        specs=specs,
        check_specs=checks,
        name=name,
        description=description,
        partitions_def=daily,
        group_name="ingest",
        backfill_policy=one_run_per_day,
    )
    def _ingest(
        context: dg.AssetExecutionContext, database: Database, landing: LandingZone
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        day = date.fromisoformat(context.partition_key)
        with retried_if_transient():
            result = load(day, landing.root(), database.engine())
        if result.files == 0:
            context.log.warning(f"no {result.source} file for {day} under {landing.root()}")
        context.log.info(result.summary())
        yield from materialized(specs, result)
        if suite:
            yield from check_results(context, database.engine(), checked, suite, result.source, day)

    return _ingest
