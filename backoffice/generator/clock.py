"""Dates and timestamps, all derived from day offsets against the generation start."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


class Calendar:
    """Turns day offsets (0 = start) into ISO dates and Paris timestamps, with caches."""

    def __init__(self, start: date) -> None:
        self.start = start
        self.iso = lru_cache(maxsize=4096)(self._iso)
        self._offset = lru_cache(maxsize=4096)(self._offset_of)

    def date(self, day: int) -> date:
        return self.start + timedelta(days=day)

    def _iso(self, day: int) -> str:
        return (self.start + timedelta(days=day)).isoformat()

    def _offset_of(self, day: int) -> str:
        d = self.start + timedelta(days=day)
        # Noon avoids the ambiguous hour of a DST change; good enough for synthetic times.
        off = datetime(d.year, d.month, d.day, 12, tzinfo=PARIS).utcoffset()
        assert off is not None
        hours = int(off.total_seconds()) // 3600
        return f"+{hours:02d}:00"

    def timestamp(self, day: int, second_of_day: int) -> str:
        """Local Paris time with its offset, e.g. 2026-11-25T14:03:00+01:00."""
        h, rest = divmod(second_of_day, 3600)
        m, s = divmod(rest, 60)
        return f"{self.iso(day)}T{h:02d}:{m:02d}:{s:02d}{self._offset(day)}"

    def compact(self, day: int) -> str:
        """YYYYMMDD, as CII dates are written."""
        return self.iso(day).replace("-", "")
