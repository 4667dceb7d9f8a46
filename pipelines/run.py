"""Run day partitions of the daily job in this process, as `backoffice pipeline run` does."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import dagster as dg

from pipelines.definitions import defs
from pipelines.jobs import daily_pipeline, ingest_only

# One table per ingest stands for the load: every table of a load carries the same figures.
# The summary is the output; step-by-step logs stay in the run's record in the Dagster UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
INGEST_ASSETS = {
    "raw/suppliers": "suppliers",
    "raw/booking_snapshots": "bookings",
    "raw/payments": "payments",
    "raw/supplier_invoice_lines": "supplier_invoices",
}
BALANCES_ASSET = "app/balance_charge_attempts"
EXPORT_ASSET = "exports/accounting_export"


class PipelineFailed(RuntimeError):
    """A day's run failed; the message names the day, the step and the reason in one line."""


@dataclass
class SourceTotals:
    loaded: int = 0
    unchanged: int = 0
    rejected: int = 0
    files: int = 0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        rows = self.loaded + self.unchanged + self.rejected
        return rows / self.seconds if self.seconds else 0.0


@dataclass
class PipelineSummary:
    first: date
    last: date
    sources: dict[str, SourceTotals] = field(default_factory=dict)
    models_built: int = 0
    checks_passed: int = 0
    checks_failed: int = 0
    checks_warned: int = 0  # failed checks of WARN severity: worth a look, the day still loads
    # Automatic balance charges (assets/balances.py): counts, and amounts charged per currency.
    balances: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("charged", "declined", "given_up"), 0))
    balances_charged: dict[str, Decimal] = field(default_factory=dict)
    # The accounting export of the last day (assets/export.py): id, entries, files, per journal totals.
    export: dict[str, object] | None = None
    run_ids: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def lines(self) -> list[str]:
        span = self.first.isoformat() if self.first == self.last else f"{self.first} to {self.last}"
        out = [f"pipeline {span}: {len(self.run_ids)} run(s) in {self.duration_s:.1f} s"]
        out += [
            f"  {source}: {t.loaded} loaded, {t.unchanged} skipped, {t.rejected} rejected"
            f" ({t.files} files read, {t.rows_per_second:,.0f} rows/s)"
            for source, t in self.sources.items()
        ]
        out.append(
            f"  dbt: {self.models_built} models built; checks: {self.checks_passed} passed,"
            f" {self.checks_warned} warned, {self.checks_failed} failed"
        )
        amounts = ", ".join(f"{amount} {currency}" for currency, amount in sorted(self.balances_charged.items()))
        out.append(
            f"  balances: {self.balances['charged']} charged{f' ({amounts})' if amounts else ''},"
            f" {self.balances['declined']} declined, {self.balances['given_up']} given up"
        )
        if self.export is not None:
            e = self.export
            out.append(f"  export {e['export_id']}: {e['entries']} entries, {e['lines']} lines in {e['location']}")
            totals: dict[str, dict[str, object]] = e["totals"]  # type: ignore[assignment]
            out += [
                f"    {journal}: {t['entries']} entries, debit {t['debit']}, credit {t['credit']}"
                for journal, t in totals.items()
            ]
        return out


def run_days(
    first: date,
    last: date,
    instance: dg.DagsterInstance | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> PipelineSummary:
    """Materialise every day from `first` to `last` (inclusive), one run per day, in order;
    the ingest assets every day; the balance charges and dbt with the last day's run (the charges
    catch up on whatever fell due earlier in the range), then the accounting export of the last
    day (it carries every entry validated by then and not exported yet).

    `instance` defaults to the persistent one (pipelines.instance), so runs show in the Dagster UI.
    Raises PipelineFailed at the first day that fails; earlier days stay done. `progress` is
    called with (days done, days in all, what the day loaded and how fast) after each day.
    """
    if last < first:
        raise PipelineFailed(f"the last day {last} is before the first day {first}")
    if instance is None:
        from backoffice.db.engine import resolve_database_url
        from pipelines.instance import persistent_instance

        instance = persistent_instance(resolve_database_url())
    started = time.perf_counter()
    summary = PipelineSummary(first, last, {source: SourceTotals() for source in INGEST_ASSETS.values()})
    jobs = {name: defs.resolve_job_def(name) for name in (daily_pipeline.name, ingest_only.name)}
    total = (last - first).days + 1
    for done, day in enumerate((first + timedelta(days=n) for n in range(total)), start=1):
        # The marts are views: one dbt build after the last day covers every day of the range.
        job = jobs[daily_pipeline.name if day == last else ingest_only.name]
        day_started = time.perf_counter()
        result = job.execute_in_process(
            partition_key=day.isoformat(), instance=instance, raise_on_error=False, run_config=QUIET
        )
        summary.run_ids.append(result.run_id)
        if not result.success:
            raise PipelineFailed(f"{day}: {_failure(result)}")
        loaded_before = sum(t.loaded + t.unchanged + t.rejected for t in summary.sources.values())
        _add(summary, result)
        if progress is not None:
            rows = sum(t.loaded + t.unchanged + t.rejected for t in summary.sources.values()) - loaded_before
            elapsed = time.perf_counter() - day_started
            progress(done, total, f"{day}: {rows:,} records in {elapsed:.1f} s ({rows / elapsed:,.0f}/s)")
    summary.duration_s = round(time.perf_counter() - started, 1)
    return summary


def _add(summary: PipelineSummary, result: dg.ExecuteInProcessResult) -> None:
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        key = materialization.asset_key.to_user_string()
        if key in INGEST_ASSETS:
            totals = summary.sources[INGEST_ASSETS[key]]
            meta = materialization.metadata
            totals.loaded += int(meta["rows_loaded"].value)  # type: ignore[arg-type]
            totals.unchanged += int(meta["rows_unchanged"].value)  # type: ignore[arg-type]
            totals.rejected += int(meta["rows_rejected"].value)  # type: ignore[arg-type]
            totals.files += int(meta["files"].value)  # type: ignore[arg-type]
            totals.seconds += float(meta["duration_s"].value)  # type: ignore[arg-type]
        elif key == BALANCES_ASSET:
            meta = materialization.metadata
            for count in summary.balances:
                summary.balances[count] += int(meta[count].value)  # type: ignore[arg-type]
            for name, value in meta.items():
                if name.startswith("charged_"):
                    currency = name.removeprefix("charged_")
                    charged = Decimal(str(value.value))
                    summary.balances_charged[currency] = summary.balances_charged.get(currency, Decimal(0)) + charged
        elif key == EXPORT_ASSET:
            summary.export = {name: value.value for name, value in materialization.metadata.items()}
        elif materialization.asset_key.path[0] not in ("raw", "app"):
            summary.models_built += 1
    for event in result.get_asset_check_evaluations():
        if event.passed:
            summary.checks_passed += 1
        elif event.severity == dg.AssetCheckSeverity.WARN:
            summary.checks_warned += 1
        else:
            summary.checks_failed += 1


def _failure(result: dg.ExecuteInProcessResult) -> str:
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        message = error.message.strip().splitlines()[0] if error else "unknown error"
        # dagster wraps the asset's exception; the cause holds what the asset said.
        while error is not None and error.cause is not None:
            error = error.cause
            message = error.message.strip().splitlines()[0]
        return f"step {event.step_key} failed: {message}"
    return "the run failed before any step ran"
