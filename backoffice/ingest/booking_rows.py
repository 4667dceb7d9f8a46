"""Booking lines turned into COPY text for their target tables, batch by batch.

`parsed_batches` reads the day's files line by line, checks each line (booking_contract) and
turns every valid snapshot into the rows it writes (booking_merge.TARGETS), already formatted
as COPY text lines: the process that loads only has to choose where each snapshot goes and
send bytes. It runs in the loading process for a small day, or in a worker process (`main`)
that parses the next batch while the loading process streams the previous one to PostgreSQL,
on the other core. `dossier_counts` is the loader's quick first pass over the same lines: how
many times the day delivers each dossier.
"""

from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from operator import itemgetter
from typing import Any

import orjson

from backoffice.ingest.booking_contract import ContractBreach, parse_snapshot
from backoffice.ingest.booking_merge import TARGETS
from backoffice.ingest.files import BOM, LandingFile, numbered_lines
from backoffice.ingest.ledger import Rejection

_DOSSIER = itemgetter(*TARGETS["app.dossiers"][2:18])  # status .. client_language, as the document names them
_TRAVELLER = itemgetter(*TARGETS["app.travellers"][1:])
_SERVICE = itemgetter(*TARGETS["app.services"][1:])
_SCHEDULE = itemgetter(*TARGETS["app.payment_schedule"][1:])
_LINE = itemgetter("service_id", "line_id")
_LINE_PRICE = itemgetter("label", "quantity", "unit_sale_amount")
_LINE_PURCHASE = itemgetter("unit_purchase_amount", "purchase_currency", "vat_rate", "supplier_code")
_ZERO = Decimal("0.00")

# One valid snapshot: dossier_number, version, updated_at (ISO 8601, UTC), file, line, then its
# COPY text lines in TARGETS' order: the raw row, the dossier row, and the lists of traveller,
# service, payment schedule and price line rows.
Snap = tuple[str, int, str, str, int, str, str, list[str], list[str], list[str], list[str]]


@dataclass
class Parsed:
    """One batch: its valid snapshots, in file order, and the lines it rejected."""

    snaps: list[Snap] = field(default_factory=list)
    breaches: list[Rejection] = field(default_factory=list)


def _field(value: Any) -> str:
    """One value in COPY's text format (values are str, int, Decimal or None here)."""
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


def parsed_batches(files: list[LandingFile], batch_lines: int) -> Iterator[Parsed]:
    """Readable files only, in the order given."""
    for f in files:
        lines = numbered_lines(f.path)
        plain_name = _field(f.name) == f.name
        while chunk := list(islice(lines, batch_lines)):
            batch = Parsed()
            for number, line, unterminated in chunk:
                try:
                    doc = parse_snapshot(line).doc
                except ContractBreach as breach:
                    reason = breach.reason
                    if unterminated and reason.startswith("not valid JSON"):
                        reason += " (the file looks truncated: its last line has no end)"
                    batch.breaches.append((f.name, number, breach.record_key, reason))
                    continue
                # JSON cannot hold a raw tab, newline or backslash inside a string: a line without a
                # backslash has no value to escape, and the line itself none unless tabs or CRs pad it.
                plain = plain_name and "\\" not in line and "\t" not in line and "\r" not in line
                batch.snaps.append(_split(doc, line, f.name, number, plain))
            yield batch


def _split(doc: dict[str, Any], line: str, file: str, number: int, plain: bool) -> Snap:
    number_, version, updated_at = doc["dossier_number"], doc["platform_version"], doc["updated_at"]
    address = doc["client_address"]
    cancelled = {s["service_id"] for s in doc["services"] if s["status"] == "cancelled"}
    # What the dossier's sale total is when these are its only lines (backoffice.db.sale_total):
    # only a dossier new to the database is written from this row; the merge recomputes the others.
    sale_total = sum(
        (x["quantity"] * Decimal(x["unit_sale_amount"]) for x in doc["lines"] if x["service_id"] not in cancelled),
        _ZERO,
    )
    source = f"{number_}@v{version}"
    currency = doc["currency"]
    return (
        number_,
        version,
        updated_at,
        file,
        number,
        _row((number_, version, updated_at, line, file, number), plain),
        _row(
            (
                number_,
                version,
                *_DOSSIER(doc),
                None if address is None else orjson.dumps(address).decode(),
                doc["created_at"],
                updated_at,
                sale_total,
            ),
            plain,
        ),
        [_row((number_, *_TRAVELLER(t)), plain) for t in doc["travellers"]],
        [_row((number_, *_SERVICE(s)), plain) for s in doc["services"]],
        [_row((number_, *_SCHEDULE(p)), plain) for p in doc["payment_schedule"]],
        [
            _row(
                (
                    number_,
                    *_LINE(x),
                    "booking",
                    version,
                    *_LINE_PRICE(x),
                    currency,
                    *_LINE_PURCHASE(x),
                    "booking_snapshot",
                    source,
                    updated_at,
                    "platform",
                ),
                plain,
            )
            for x in doc["lines"]
        ],
    )


_KEY = b'"dossier_number"'
_PREFIX = b'{"dossier_number":'


def dossier_counts(files: list[LandingFile]) -> dict[str, int]:
    """How many lines of the day name each dossier (readable files only).

    Only the top-level `dossier_number` of each line is read, not checked: a line the contract
    refuses may be counted, which only sends its dossier through the merge instead of a direct COPY.
    """
    counts: dict[str, int] = {}
    for f in files:
        with f.path.open("rb") as lines:
            for index, line in enumerate(lines):
                number = dossier_number_of(line.removeprefix(BOM) if index == 0 else line)
                if number is not None:
                    counts[number] = counts.get(number, 0) + 1
    return counts


def dossier_number_of(line: bytes) -> str | None:
    """The line's top-level `dossier_number` as JSON reads it, when it is a string (UTF-8 line)."""
    # The platform writes the number first: without a backslash in the line (no escape can hide
    # a key or end the value early) and with that key once, it is the top-level one, as written.
    if line.startswith(_PREFIX) and b"\\" not in line and line.count(_KEY) == 1:
        start = len(_PREFIX)
        while line[start : start + 1] == b" ":
            start += 1
        end = line.find(b'"', start + 1)
        if line[start : start + 1] == b'"' and end >= 0:
            return line[start + 1 : end].decode()
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            return None
    number = record.get("dossier_number") if isinstance(record, dict) else None
    return number if isinstance(number, str) else None


def main() -> None:
    """The worker process (`python -m backoffice.ingest.booking_rows`), started by bookings.py.

    Reads the pickled (files, batch_lines) on stdin; writes pickled ("batch", (snaps, breaches))
    messages on stdout, then ("done", None), or ("error", why) when a batch fails. A pipe holds
    little, so the worker runs about one batch ahead of the loader; when the loader is gone (its
    transaction failed, or it was killed) the next write fails and the worker ends.
    """
    files, batch_lines = pickle.load(sys.stdin.buffer)
    out = sys.stdout.buffer
    try:
        for batch in parsed_batches(files, batch_lines):
            pickle.dump(("batch", (batch.snaps, batch.breaches)), out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
        pickle.dump(("done", None), out)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # the loader raises it, and its transaction rolls back
        pickle.dump(("error", f"{type(exc).__name__}: {exc}"), out)
    out.flush()


if __name__ == "__main__":
    main()
