"""What every ingest asset reports, from backoffice.ingest's result."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import dagster as dg

from backoffice.ingest import IngestResult


def ingest_metadata(result: IngestResult) -> dict[str, dg.MetadataValue]:
    return {
        "files": dg.MetadataValue.int(result.files),
        "files_skipped": dg.MetadataValue.int(result.files_skipped),
        "rows_loaded": dg.MetadataValue.int(result.rows_loaded),
        "rows_unchanged": dg.MetadataValue.int(result.rows_unchanged),
        "rows_rejected": dg.MetadataValue.int(result.rows_rejected),
        "bytes": dg.MetadataValue.int(result.bytes),
        "duration_s": dg.MetadataValue.float(result.duration_s),
    }


def materialized(specs: Sequence[dg.AssetSpec], result: IngestResult) -> Iterator[dg.MaterializeResult]:
    """One load writes all the tables: each is materialised, with the load's figures."""
    metadata = ingest_metadata(result)
    for spec in specs:
        yield dg.MaterializeResult(asset_key=spec.key, metadata=metadata)
