"""Booking lines turned into COPY data for the stage tables, batch by batch.

`staged_batches` reads the day's files line by line, checks each line (booking_contract) and
splits every valid snapshot into the rows of the typed stage tables (booking_merge), written as
COPY text: the process that loads only has to send bytes. It runs in the loading process for a
small day, or in a worker process (`main`) that parses the next batch while the loading process
streams the previous one to PostgreSQL, on the other core.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from typing import Any

import orjson

from backoffice.ingest import booking_merge
from backoffice.ingest.booking_contract import ContractBreach, parse_snapshot
from backoffice.ingest.files import LandingFile, numbered_lines
from backoffice.ingest.ledger import Rejection

# Stage tables in the order their COPY is sent: stage_booking last, so the statement a load is
# seen running while it stages (pg_stat_activity) is that one.
TABLES = {
    "stage_traveller": booking_merge.TRAVELLER_COLUMNS,
    "stage_service": booking_merge.SERVICE_COLUMNS,
    "stage_line": booking_merge.LINE_COLUMNS,
    "stage_schedule": booking_merge.SCHEDULE_COLUMNS,
    "stage_booking": booking_merge.BOOKING_COLUMNS,
}
_DOSSIER = itemgetter(*booking_merge.BOOKING_COLUMNS[6:-2])  # the normalised document's dossier fields
_TRAVELLER = itemgetter(*booking_merge.TRAVELLER_COLUMNS)
_SERVICE = itemgetter(*booking_merge.SERVICE_COLUMNS)
_LINE = itemgetter(*booking_merge.LINE_COLUMNS)
_SCHEDULE = itemgetter(*booking_merge.SCHEDULE_COLUMNS)


Rows = dict[str, list[str]]  # COPY text lines per stage table


@dataclass
class Staged:
    """One batch: COPY text (UTF-8) per stage table, and the lines it rejected."""

    copy: dict[str, bytes] = field(default_factory=dict)
    breaches: list[Rejection] = field(default_factory=list)


def _field(value: Any) -> str:
    """One value in COPY's text format (values are str, int or None here)."""
    if value is None:
        return "\\N"
    if value.__class__ is not str:
        return str(value)
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _row(values: tuple[Any, ...], plain: bool) -> str:
    """One COPY text line (without its newline)."""
    if plain:
        return "\t".join(["\\N" if v is None else v if v.__class__ is str else str(v) for v in values])
    return "\t".join([_field(v) for v in values])


def staged_batches(files: list[LandingFile], batch_lines: int) -> Iterator[Staged]:
    """Readable files only; `snap` numbers the valid snapshots of the whole day from 1."""
    snap = 0
    for f in files:
        lines = numbered_lines(f.path)
        plain_name = _field(f.name) == f.name
        while chunk := list(islice(lines, batch_lines)):
            rows: Rows = {table: [] for table in TABLES}
            batch = Staged()
            for number, line, unterminated in chunk:
                try:
                    doc = parse_snapshot(line).doc
                except ContractBreach as breach:
                    reason = breach.reason
                    if unterminated and reason.startswith("not valid JSON"):
                        reason += " (the file looks truncated: its last line has no end)"
                    batch.breaches.append((f.name, number, breach.record_key, reason))
                    continue
                snap += 1
                # JSON cannot hold a raw tab, newline or backslash inside a string: a line without a
                # backslash has no value to escape, and the line itself none unless tabs or CRs pad it.
                plain = plain_name and "\\" not in line and "\t" not in line and "\r" not in line
                _split(rows, snap, doc, line, f.name, number, plain)
            batch.copy = {table: ("\n".join(text) + "\n").encode() for table, text in rows.items() if text}
            yield batch


def _split(rows: Rows, snap: int, doc: dict[str, Any], line: str, file: str, number: int, plain: bool) -> None:
    address = doc["client_address"]
    booking = (
        snap,
        doc["dossier_number"],
        doc["platform_version"],
        doc["updated_at"],
        line,
        file,
        number,
        *_DOSSIER(doc),
        None if address is None else orjson.dumps(address).decode(),
        doc["created_at"],
    )
    rows["stage_booking"].append(_row(booking, plain))
    rows["stage_traveller"] += [_row((snap, *_TRAVELLER(t)), plain) for t in doc["travellers"]]
    rows["stage_service"] += [_row((snap, *_SERVICE(s)), plain) for s in doc["services"]]
    rows["stage_line"] += [_row((snap, *_LINE(x)), plain) for x in doc["lines"]]
    rows["stage_schedule"] += [_row((snap, *_SCHEDULE(p)), plain) for p in doc["payment_schedule"]]


def main() -> None:
    """The worker process (`python -m backoffice.ingest.booking_rows`), started by bookings.py.

    Reads the pickled (files, batch_lines) on stdin; writes pickled ("batch", (copy, breaches))
    messages on stdout, then ("done", None), or ("error", why) when a batch fails. A pipe holds
    little, so the worker runs about one batch ahead of the loader; when the loader is gone (its
    transaction failed, or it was killed) the next write fails and the worker ends.
    """
    files, batch_lines = pickle.load(sys.stdin.buffer)
    out = sys.stdout.buffer
    try:
        for batch in staged_batches(files, batch_lines):
            pickle.dump(("batch", (batch.copy, batch.breaches)), out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
        pickle.dump(("done", None), out)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # the loader raises it, and its transaction rolls back
        pickle.dump(("error", f"{type(exc).__name__}: {exc}"), out)
    out.flush()


if __name__ == "__main__":
    main()
