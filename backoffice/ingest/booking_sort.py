"""Where each valid snapshot of a day goes, decided in the loading process before it is written.

Read once, under the source's lock: the stored snapshots of the day's dossiers (raw) and which
of them app.dossiers already holds. Then, snapshot by snapshot in file order, the rules the merge
used to apply in SQL: a record already stored, or already met in this load, is `unchanged`; one
older (version, then updated_at) than the dossier's latest stored snapshot is `stale` (rejected,
with the reason REJECT_STALE writes); any other is `new` and goes to raw.booking_snapshots. A new
snapshot of a dossier the database does not know and the day delivers once is written straight
into app.*; the others go to the stage tables, where the merge picks each dossier's latest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from backoffice.ingest.booking_merge import STAGES, TARGETS
from backoffice.ingest.booking_rows import Snap

_APP = tuple(TARGETS)[1:]


class DaySort:
    def __init__(self, cur: psycopg.Cursor, counts: dict[str, int]) -> None:
        """`counts`: how many lines of the day name each dossier (booking_rows.dossier_counts)."""
        numbers = list(counts)
        cur.execute(
            "SELECT dossier_number, version, updated_at FROM raw.booking_snapshots WHERE dossier_number = ANY(%s)",
            (numbers,),
        )
        self.stored: set[tuple[str, int, datetime]] = set()
        self.applied: dict[str, tuple[int, datetime]] = {}
        for number, version, updated_at in cur:
            self.stored.add((number, version, updated_at))
            if self.applied.get(number, (0,)) < (version, updated_at):
                self.applied[number] = (version, updated_at)
        cur.execute("SELECT dossier_number FROM app.dossiers WHERE dossier_number = ANY(%s)", (numbers,))
        known = {number for (number,) in cur} | self.applied.keys()
        # Dossiers whose state the merge decides: known already, or delivered more than once today.
        self.merged = known | {number for number, count in counts.items() if count > 1}
        self.seen: set[tuple[str, int, datetime]] = set()  # records of merged dossiers met in this load
        self.per_file: dict[str, list[int]] = {}  # file: [loaded, stale, unchanged]
        self.stale: list[tuple[Any, ...]] = []  # stage_stale rows
        self.snap = 0  # the last stage `snap` given

    def place(self, snaps: list[Snap]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """A batch's COPY text lines per target table: for the table itself, and for its stage (`snap` first)."""
        direct: dict[str, list[str]] = {table: [] for table in TARGETS}
        staged: dict[str, list[str]] = {table: [] for table in STAGES}
        raw = direct["raw.booking_snapshots"]
        for number, version, updated_at, file, line, raw_row, dossier, *children in snaps:
            counts = self.per_file.get(file)
            if counts is None:
                counts = self.per_file[file] = [0, 0, 0]
            if number in self.merged:
                key = (number, version, datetime.fromisoformat(updated_at))
                if key in self.seen or key in self.stored:
                    counts[2] += 1
                    continue
                self.seen.add(key)
                applied = self.applied.get(number)
                if applied is not None and applied > key[1:]:
                    counts[1] += 1
                    self.stale.append((file, line, number, version, updated_at, *applied))
                    continue
                self.snap += 1
                prefix = f"{self.snap}\t"
                staged["app.dossiers"].append(prefix + dossier)
                for table, rows in zip(_APP[1:], children, strict=True):
                    staged[table] += [prefix + row for row in rows]
            else:
                direct["app.dossiers"].append(dossier)
                for table, rows in zip(_APP[1:], children, strict=True):
                    direct[table] += rows
            counts[0] += 1
            raw.append(raw_row)
        return direct, staged

    def record(self, cur: psycopg.Cursor) -> None:
        """The stale snapshots and the per-file counts, for the merge's REJECT_STALE and COUNTS_PER_FILE."""
        if self.stale:
            with cur.copy("COPY stage_stale FROM STDIN") as copy:
                for row in self.stale:
                    copy.write_row(row)
        with cur.copy("COPY stage_count FROM STDIN") as copy:
            for file, counts in self.per_file.items():
                copy.write_row((file, *counts))
