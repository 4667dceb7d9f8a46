"""The day's snapshot of the accountants' marts and export, to the Parquet archive DuckDB reads."""

from datetime import date

import dagster as dg

from assets.partitions import daily, one_run_per_day, retried_if_transient
from backoffice.analytics.archive import archive_day
from backoffice.config import get_settings
from pipelines.resources import Database

MARTS = (
    ["marts", "dossier_billing_status"],
    ["marts", "supplier_billing_status"],
    ["marts", "supplier_invoice_line_matches"],
    ["marts", "accounting_entries"],
    ["marts", "dossier_margin"],
    ["intermediate", "int_client__balances"],
    ["exports", "accounting_export"],
)


@dg.asset(
    key=["archive"],
    deps=[dg.AssetKey(path) for path in MARTS],
    partitions_def=daily,
    group_name="archive",
    backfill_policy=one_run_per_day,
)
def archive(context: dg.AssetExecutionContext, database: Database) -> dg.MaterializeResult:
    """Writes the partition's day to BACKOFFICE_ARCHIVE_DIR as `<table>/date=YYYY-MM-DD/part.parquet`:
    the billing status marts, the invoice line matches, the margin and client balances as they
    stand (a snapshot), the journal lines validated that day and the lines of that day's export.
    Streamed in batches, each file renamed into place whole; a re-run rewrites the same bytes
    when the data has not changed (docs/analytics.md)."""
    day = date.fromisoformat(context.partition_key)
    with retried_if_transient():
        result = archive_day(database.engine(), day, get_settings().archive_root)
    for line in result.summary_lines():
        context.log.info(line)
    return dg.MaterializeResult(
        metadata={
            "location": dg.MetadataValue.path(str(result.root)),
            "rows": dg.MetadataValue.int(result.rows),
            "bytes": dg.MetadataValue.int(result.bytes),
            "tables": dg.MetadataValue.json({f.table: {"rows": f.rows, "bytes": f.bytes} for f in result.files}),
        }
    )
