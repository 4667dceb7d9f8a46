"""The files beside the FEC: the same journal lines as CSV and Parquet, and the manifest.

Both carry the columns of marts.accounting_entries (without exported_in, which the export itself
fills) in the FEC's line order, so a tool can read whichever suits it and get the same rows. The
CSV is UTF-8 with a header, dot decimals and ISO dates; the Parquet keeps amounts as exact
decimals (decimal128(14, 2)). Nothing in any file depends on when it was written: a re-run of a
day gives the same bytes.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import multiprocessing
import operator
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

COLUMNS = (
    "journal_code",
    "entry_number",
    "entry_date",
    "account",
    "aux_account",
    "account_label",
    "piece_ref",
    "piece_date",
    "label",
    "debit",
    "credit",
    "currency_amount",
    "currency",
    "validated_at",
    "source_type",
    "source_id",
    "dossier_number",
)
MONEY = pa.decimal128(14, 2)
SCHEMA = pa.schema(
    [
        ("journal_code", pa.string()),
        ("entry_number", pa.int32()),
        ("entry_date", pa.date32()),
        ("account", pa.string()),
        ("aux_account", pa.string()),
        ("account_label", pa.string()),
        ("piece_ref", pa.string()),
        ("piece_date", pa.date32()),
        ("label", pa.string()),
        ("debit", MONEY),
        ("credit", MONEY),
        ("currency_amount", MONEY),
        ("currency", pa.string()),
        ("validated_at", pa.timestamp("us", tz="UTC")),
        ("source_type", pa.string()),
        ("source_id", pa.string()),
        ("dossier_number", pa.string()),
    ]
)


def _csv_value(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name == "validated_at":
        return value.astimezone(UTC).isoformat()
    return str(value)


def write_csv(rows: Iterable[Mapping[str, Any]], path: Path) -> None:
    pick = operator.itemgetter(*COLUMNS)
    at = COLUMNS.index("validated_at")
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for row in rows:
            # csv writes None as "" and str() of the rest itself; only the timestamp needs shaping.
            values = list(pick(row))
            values[at] = _csv_value("validated_at", values[at])
            writer.writerow(values)


def write_parquet(rows: list[Mapping[str, Any]], path: Path) -> None:
    # Column by column: much faster than a dict per row for a day of hundreds of thousands of lines.
    table = pa.Table.from_pydict({name: [row[name] for row in rows] for name in COLUMNS}, schema=SCHEMA)
    pq.write_table(table, path, compression="zstd")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(manifest: Mapping[str, Any], path: Path) -> None:
    path.write_text(json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


CHILD_TIMEOUT_SECONDS = 300  # a day of 100,000 entries takes about 5 s of the child's CPU


@contextlib.contextmanager
def written_aside(rows: list[Mapping[str, Any]], csv_path: Path, parquet_path: Path) -> Iterator[None]:
    """Write the CSV and Parquet in a forked process while the body runs (the FEC written and
    checked), so a day's export uses two cores. The child inherits `rows` as they are (nothing is
    pickled) and leaves by os._exit, never touching the parent's connections. If it fails, or
    fork is not available, the files are written here after the body; if the body raises, the
    child is stopped and its files removed."""
    try:
        child = multiprocessing.get_context("fork").Process(
            target=_write_both, args=(rows, csv_path, parquet_path), daemon=True
        )
        child.start()
    except (ValueError, OSError):  # no fork on this platform, or no process left
        child = None
    try:
        yield
    except BaseException:
        if child is not None:
            child.kill()
            child.join()
        csv_path.unlink(missing_ok=True)
        parquet_path.unlink(missing_ok=True)
        raise
    if child is not None:
        # A forked child of a threaded process can, in theory, wait forever on a lock some other
        # thread held at fork time: never let that hang the day's export, write here instead.
        child.join(timeout=CHILD_TIMEOUT_SECONDS)
        if child.is_alive():
            child.kill()
            child.join()
    if child is None or child.exitcode != 0:
        csv_path.unlink(missing_ok=True)
        parquet_path.unlink(missing_ok=True)
        _write_both(rows, csv_path, parquet_path)


def _write_both(rows: list[Mapping[str, Any]], csv_path: Path, parquet_path: Path) -> None:
    write_parquet(rows, parquet_path)
    write_csv(rows, csv_path)
