"""What one ingestion run did, for progress lines and Dagster metadata."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestResult:
    source: str
    files: int  # files seen in the folder
    files_skipped: int  # already loaded with the same content (sha256)
    rows_loaded: int  # records that changed something
    rows_unchanged: int  # valid records already loaded, or superseded by nothing new
    rows_rejected: int  # records written to raw.rejections (a whole unreadable file counts once)
    bytes: int
    duration_s: float

    def summary(self) -> str:
        return (
            f"{self.source}: {self.rows_loaded} loaded, {self.rows_unchanged} unchanged, "
            f"{self.rows_rejected} rejected ({self.files} files, {self.files_skipped} already loaded)"
        )
