"""Files that landed in a past day's folder after that day was loaded.

Compared by path and size with raw.landing_files rather than by checksum: the sensor asking
this runs every few minutes over months of folders, and hashing every file each time would
cost more than the loads it triggers. A re-delivered file of the same size and other content
is still caught by the next scheduled or manual run of that day, which compares checksums.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

DAILY_SOURCES = ("bookings", "payments", "supplier_invoices")


@dataclass(frozen=True)
class LateDay:
    day: date
    files: tuple[str, ...]  # landing-relative paths not loaded yet (or changed size)

    @property
    def digest(self) -> str:
        """Same pending files, same digest: a sensor's run key that never fires twice for them."""
        return hashlib.sha256("\n".join(self.files).encode()).hexdigest()[:16]


def _on_disk(landing: Path, day: date) -> dict[str, int]:
    found: dict[str, int] = {}
    for source in DAILY_SOURCES:
        folder = landing / source / day.isoformat()
        if folder.is_dir():
            for path in folder.iterdir():
                if path.is_file():
                    found[path.relative_to(landing).as_posix()] = path.stat().st_size
    return found


def late_days(engine: Engine, landing: Path, today: date, lookback_days: int = 30) -> list[LateDay]:
    """Past days (before `today`, within the lookback) that were loaded and have files not loaded since."""
    first = today - timedelta(days=lookback_days)
    with engine.connect() as conn:
        recorded = conn.execute(
            sa.text(
                """SELECT partition_date, path, bytes FROM raw.landing_files
                   WHERE partition_date >= :first AND partition_date < :today"""
            ),
            {"first": first, "today": today},
        ).all()
    loaded: dict[date, dict[str, int]] = {}
    for day, path, size in recorded:
        loaded.setdefault(day, {})[path] = size
    late = []
    for day in sorted(loaded):
        pending = tuple(sorted(path for path, size in _on_disk(landing, day).items() if loaded[day].get(path) != size))
        if pending:
            late.append(LateDay(day, pending))
    return late
