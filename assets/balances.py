"""The day's automatic balance charges (backoffice.services.balances), after the day's ingestion."""

from datetime import date
from decimal import Decimal

import dagster as dg

from assets.partitions import daily, one_run_per_day, retried_if_transient
from backoffice.domain.permissions import SYSTEM
from backoffice.providers import SimulatorProvider
from backoffice.services.balances import charge_due_balances
from pipelines.resources import Database

ATTEMPTS = dg.AssetSpec(
    ["app", "balance_charge_attempts"],
    description="Every attempt to charge a card on file for a due schedule item, and its outcome.",
    # The day's bookings (schedules) and payments first: a payment that landed today covers its item.
    # Named by the raw tables their ingest steps write with app.dossiers, app.payment_schedule and
    # app.payments (what the charge reads): those app tables carry dbt source tests, which Dagster
    # runs in the dbt step, and depending on them would put the charges after dbt, whereas dbt
    # (int_entries__client_payments) waits for the charges so that their payments are in the
    # day's journal and export (a re-run after a kill would otherwise add them: issue 9).
    deps=[["raw", "booking_snapshots"], ["raw", "payments"]],
)


@dg.multi_asset(
    specs=[ATTEMPTS],
    name="charge_balances",
    partitions_def=daily,
    group_name="payments",
    backfill_policy=one_run_per_day,
)
def charge_balances(context: dg.AssetExecutionContext, database: Database) -> dg.MaterializeResult:
    """Charges the cards on file of the schedule items due by the partition's day and not paid,
    through the payment provider (the simulator, BACKOFFICE_PROVIDER_*), retrying declines per
    BACKOFFICE_BALANCE_RETRY_DAYS and mailing the client on each decline. A re-run of a day charges
    nothing twice; attempts a crash left pending are settled first."""
    day = date.fromisoformat(context.partition_key)
    engine = database.engine()
    with retried_if_transient():
        report = charge_due_balances(engine, day, SimulatorProvider.from_settings(engine), SYSTEM)
    context.log.info(report.line())
    currencies = sorted(set(report.captured_amounts) | set(report.declined_amounts))
    return dg.MaterializeResult(
        asset_key=ATTEMPTS.key,
        metadata={
            "charged": dg.MetadataValue.int(report.captured),
            "declined": dg.MetadataValue.int(report.declined),
            "given_up": dg.MetadataValue.int(report.given_up),
            "settled_from_earlier_runs": dg.MetadataValue.int(report.settled),
            "left_pending": dg.MetadataValue.int(report.unsettled),
            **{
                f"charged_{c}": dg.MetadataValue.text(str(report.captured_amounts.get(c, Decimal("0.00"))))
                for c in currencies
            },
            **{
                f"declined_{c}": dg.MetadataValue.text(str(report.declined_amounts.get(c, Decimal("0.00"))))
                for c in currencies
            },
        },
    )
