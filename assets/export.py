"""The day's accounting export (backoffice.services.exports), after dbt has posted the entries."""

from datetime import date

import dagster as dg

from assets.partitions import daily, one_run_per_day, retried_if_transient
from backoffice.config import get_settings
from backoffice.export.delivery import configured
from backoffice.services.exports import SYSTEM_EXPORTER, export_day
from backoffice.services.unit_of_work import UnitOfWork
from pipelines.resources import Database

EXPORT = dg.AssetSpec(
    ["exports", "accounting_export"],
    description="The day's FEC, CSV, Parquet and manifest, checked, delivered and recorded.",
    deps=[["marts", "accounting_entries"]],
)


@dg.multi_asset(
    specs=[EXPORT], name="accounting_export", partitions_def=daily, group_name="export", backfill_policy=one_run_per_day
)
def accounting_export(context: dg.AssetExecutionContext, database: Database) -> dg.MaterializeResult:
    """Exports the entries of marts.accounting_entries validated by the end of the partition's day
    and never exported, as `<SIREN>FEC<YYYYMMDD>.txt` (checked like the DGFiP's Test Compta Demat:
    a fault fails the run and nothing is delivered) plus CSV, Parquet and manifest.json, to
    the destination BACKOFFICE_EXPORT_DELIVERY names (a folder, SFTP or S3). A re-run of a day
    re-delivers byte-identical files."""
    day = date.fromisoformat(context.partition_key)
    with retried_if_transient(), UnitOfWork(database.engine()) as uow:
        result = export_day(uow, SYSTEM_EXPORTER, day, configured(get_settings()))
    for line in result.summary_lines():
        context.log.info(line)
    return dg.MaterializeResult(
        asset_key=EXPORT.key,
        metadata={
            "export_id": dg.MetadataValue.text(result.export_id),
            "rerun": dg.MetadataValue.bool(result.rerun),
            "location": dg.MetadataValue.path(result.location),
            "entries": dg.MetadataValue.int(result.entries),
            "lines": dg.MetadataValue.int(result.lines),
            "totals": dg.MetadataValue.json(result.totals),
            "files": dg.MetadataValue.json(result.files),
        },
    )
