"""FEC validation before a file is released: the line and entry checks of the DGFiP's Test Compta Demat.

Reads the file as a stream (a fiscal year does not fit in memory as rows, its running totals do)
and returns every fault with its line and column, in words an accountant can act on. A file with
any fault must not be delivered. What is checked:

- the header: the 18 column names of `fec.COLUMNS`, in order, and nothing else;
- every line: 18 fields, decodable in the file's encoding;
- mandatory fields: JournalCode, JournalLib, EcritureNum, EcritureDate, CompteNum, CompteLib,
  PieceRef, PieceDate, EcritureLib, Debit, Credit, ValidDate;
- fields that go in pairs: CompAuxNum/CompAuxLib, EcritureLet/DateLet, Montantdevise/Idevise;
- CompteNum starting with three digits; dates as valid YYYYMMDD; amounts as digits with an optional
  decimal comma and at most two decimals, no thousands separator;
- not both a debit and a credit on one line;
- per entry (JournalCode + EcritureNum within a fiscal year): a single EcritureDate, PieceRef and ValidDate, and debits
  equal to credits; entry lines contiguous in the file;
- EcritureNum continuous per journal and fiscal year (the calendar year of EcritureDate): in the
  file, each series' numbers follow each other without gap from its first one (a daily file starts
  where the previous day's ended);
- the file as a whole balanced.
"""

from __future__ import annotations

import bisect
import functools
import io
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

import polars as pl

from backoffice.export.fec import COLUMNS, FecFormat

MANDATORY = (
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "ValidDate",
)
PAIRS = (("CompAuxNum", "CompAuxLib"), ("EcritureLet", "DateLet"), ("Montantdevise", "Idevise"))
DATES = ("EcritureDate", "PieceDate", "ValidDate", "DateLet")
AMOUNTS = ("Debit", "Credit", "Montantdevise")
AMOUNT = re.compile(r"^-?\d+(,\d{1,2})?$")
ACCOUNT = re.compile(r"^\d{3}")
INDEX = {name: i for i, name in enumerate(COLUMNS)}


@dataclass(frozen=True)
class Fault:
    line: int  # 1 is the header
    column: str | None
    problem: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", {self.column}" if self.column else "")
        return f"{where}: {self.problem}"


@functools.lru_cache(maxsize=1 << 16)  # zero and round amounts recur on many lines
def _amount(value: str) -> Decimal:
    return Decimal(value.replace(",", ".")) if value else Decimal(0)


@functools.lru_cache(maxsize=4096)  # a file has few distinct dates and many lines
def _valid_date(value: str) -> bool:
    if len(value) != 8 or not value.isdigit():
        return False
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return False
    return True


class _Numbers:
    """The entry numbers met in one journal and year, kept as ranges: continuous numbering (the
    normal case) keeps a fiscal year of millions of entries to one range, so memory stays bounded."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def __contains__(self, number: int) -> bool:
        i = bisect.bisect_right(self.starts, number) - 1
        return i >= 0 and number <= self.ends[i]

    def add(self, number: int) -> None:
        i = bisect.bisect_right(self.starts, number) - 1
        if i >= 0 and number <= self.ends[i]:
            return
        joins_left = i >= 0 and self.ends[i] == number - 1
        joins_right = i + 1 < len(self.starts) and self.starts[i + 1] == number + 1
        if joins_left and joins_right:
            self.ends[i] = self.ends.pop(i + 1)
            self.starts.pop(i + 1)
        elif joins_left:
            self.ends[i] = number
        elif joins_right:
            self.starts[i + 1] = number
        else:
            self.starts.insert(i + 1, number)
            self.ends.insert(i + 1, number)


@dataclass
class _Entry:
    journal: str
    number: str
    first_line: int
    date: str
    piece: str
    valid: str
    debit: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)


def _close(entry: _Entry | None, faults: list[Fault]) -> None:
    if entry is not None and entry.debit != entry.credit:
        faults.append(
            Fault(
                entry.first_line,
                None,
                f"entry {entry.journal} {entry.number} is not balanced: debit {entry.debit} ≠ credit {entry.credit}",
            )
        )


def _line_faults(n: int, value: dict[str, str]) -> list[Fault]:
    faults = []
    for name in MANDATORY:
        if not value[name].strip():
            faults.append(Fault(n, name, "is mandatory and empty"))
    for a, b in PAIRS:
        if bool(value[a].strip()) != bool(value[b].strip()):
            faults.append(Fault(n, a if not value[a].strip() else b, f"{a} and {b} go together: one is empty"))
    if value["CompteNum"] and not ACCOUNT.match(value["CompteNum"]):
        faults.append(Fault(n, "CompteNum", f"{value['CompteNum']!r} does not start with three digits"))
    for name in DATES:
        if value[name] and not _valid_date(value[name]):
            faults.append(Fault(n, name, f"{value[name]!r} is not a date as YYYYMMDD"))
    for name in AMOUNTS:
        if value[name] and not AMOUNT.match(value[name]):
            faults.append(Fault(n, name, f"{value[name]!r} is not an amount such as 1234,56"))
    if not value["EcritureNum"].isdigit() and value["EcritureNum"]:
        faults.append(Fault(n, "EcritureNum", f"{value['EcritureNum']!r} is not a whole number"))
    return faults


def check_lines(raw_lines: Iterable[bytes], fmt: FecFormat) -> list[Fault]:
    """Every fault of the file given as its raw lines (header first)."""
    faults: list[Fault] = []
    entry: _Entry | None = None
    seen_entries: dict[tuple[str, str], _Numbers] = {}
    last_number: dict[tuple[str, str], int] = {}
    total_debit = total_credit = Decimal(0)
    n = 0
    for n, raw in enumerate(raw_lines, start=1):
        try:
            decoded = raw.decode(fmt.encoding)
        except UnicodeDecodeError as exc:
            faults.append(Fault(n, None, f"is not valid {fmt.encoding}: {exc.reason} at byte {exc.start}"))
            continue
        row = decoded.rstrip("\r\n").split(fmt.char)
        if n == 1:
            if tuple(row) != COLUMNS:
                faults.append(Fault(1, None, f"header must be the 18 FEC column names in order, got {row!r}"))
            continue
        if len(row) != len(COLUMNS):
            faults.append(Fault(n, None, f"has {len(row)} fields instead of {len(COLUMNS)}"))
            continue
        value = dict(zip(COLUMNS, row, strict=True))
        line_faults = _line_faults(n, value)
        faults += line_faults
        if line_faults:
            continue
        debit, credit = _amount(value["Debit"]), _amount(value["Credit"])
        if debit and credit:
            faults.append(Fault(n, "Credit", "a line has a debit or a credit, not both"))
        total_debit += debit
        total_credit += credit
        key = (value["JournalCode"], value["EcritureNum"])
        # Numbers restart each fiscal year: AC 1 of 2025 and AC 1 of 2026 are two entries.
        year = value["EcritureDate"][:4]
        if entry is None or (entry.journal, entry.number, entry.date[:4]) != (*key, year):
            _close(entry, faults)
            # Numbers run per journal and fiscal year (the calendar year of the entry date).
            series = (key[0], year)
            number = int(value["EcritureNum"])
            met = seen_entries.setdefault(series, _Numbers())
            if number in met:
                faults.append(
                    Fault(n, "EcritureNum", f"entry {key[0]} {key[1]} is split: its lines must follow each other")
                )
            met.add(number)
            previous = last_number.get(series)
            if previous is not None and number != previous + 1:
                problem = f"journal {key[0]} jumps from entry {previous} to {number}: numbers must be continuous"
                faults.append(Fault(n, "EcritureNum", problem))
            last_number[series] = number
            entry = _Entry(key[0], key[1], n, value["EcritureDate"], value["PieceRef"], value["ValidDate"])
        else:
            for name, kept in (("EcritureDate", entry.date), ("PieceRef", entry.piece), ("ValidDate", entry.valid)):
                if value[name] != kept:
                    faults.append(
                        Fault(n, name, f"entry {key[0]} {key[1]} has two values: {kept!r} and {value[name]!r}")
                    )
        entry.debit += debit
        entry.credit += credit
    _close(entry, faults)
    if n == 0:
        faults.append(Fault(1, None, "the file is empty: it needs at least the header line"))
    elif total_debit != total_credit:
        faults.append(Fault(n, None, f"the file is not balanced: debits {total_debit} ≠ credits {total_credit}"))
    return faults


# The fast path: a day's file is checked by columns (polars) for the absence of any fault. The
# expressions are deliberately stricter than the rules (ASCII digits only, amounts under a billion,
# no stray CR or LF): a file they do not clear, for whatever reason, goes through check_lines, so
# the faults reported, their lines and their words are always check_lines' own.
FAST_MAX_BYTES = 64 * 1024 * 1024  # beyond this (a fiscal year), the streaming check keeps memory bounded


@functools.cache
def _not_space() -> str:
    """A regex class of every character that str.strip() keeps (not str.isspace())."""
    spaces = "".join(f"\\x{{{ord(c):x}}}" for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
    return f"[^{spaces}]"


def _cents(column: pl.Expr) -> pl.Expr:
    """`-1234,5` as -123450; only for values already matched by _AMOUNT_FAST."""
    body = column.str.strip_prefix("-")
    units = body.str.extract(r"^([0-9]+)", 1).cast(pl.Int64)
    decimals = body.str.extract(r",([0-9]+)$", 1).fill_null("0").str.pad_end(2, "0").cast(pl.Int64)
    return pl.when(column.str.starts_with("-")).then(-1).otherwise(1) * (units * 100 + decimals)


_AMOUNT_FAST = r"^-?[0-9]{1,9}(,[0-9]{1,2})?$"


def _clean(data: bytes, fmt: FecFormat) -> bool:
    """True only if check_lines would find no fault in `data`."""
    return _cleared(data, fmt) is not None


def _cleared(data: bytes, fmt: FecFormat) -> dict[tuple[str, str], tuple[int, int]] | None:
    """None unless check_lines would find no fault in `data`; then each journal and year's first and
    last entry numbers (what a file checked in parts needs to check continuity between them)."""
    try:
        decoded = data.decode(fmt.encoding)
    except UnicodeDecodeError:
        return None
    header, _, body = decoded.partition("\r\n")
    if header != fmt.char.join(COLUMNS) or not body.endswith("\r\n"):
        return None
    lines = pl.Series("line", [body[:-2]]).str.split("\r\n").explode()
    if lines.str.contains("[\r\n]").any() or (lines.str.count_matches(fmt.char, literal=True) != 17).any():
        return None
    frame = lines.str.split_exact(fmt.char, 17).struct.rename_fields(list(COLUMNS)).struct.unnest()
    present = {name: pl.col(name).str.contains(_not_space()) for name in COLUMNS}
    line_ok = pl.all_horizontal(
        *(present[name] for name in MANDATORY),
        *(present[a] == present[b] for a, b in PAIRS),
        pl.col("CompteNum").str.contains("^[0-9]{3}"),
        pl.col("EcritureNum").str.contains("^[0-9]{1,18}$"),
        *(pl.col(name).str.contains(_AMOUNT_FAST) for name in ("Debit", "Credit")),
        (pl.col("Montantdevise") == "") | pl.col("Montantdevise").str.contains(_AMOUNT_FAST),
    )
    if not frame.select(line_ok.all()).item():
        return None
    dates = pl.concat([frame.get_column(name) for name in DATES]).unique()
    if not all(_valid_date(value) for value in dates if value):
        return None
    frame = frame.select(
        "JournalCode",
        "EcritureNum",
        "EcritureDate",
        "PieceRef",
        "ValidDate",
        year=pl.col("EcritureDate").str.slice(0, 4),
        number=pl.col("EcritureNum").cast(pl.Int64),
        debit=_cents(pl.col("Debit")),
        credit=_cents(pl.col("Credit")),
    )
    key = pl.concat_str("JournalCode", "EcritureNum", "year", separator="\t")
    entries = (
        frame.with_columns(entry=(key != key.shift(1)).fill_null(True).cum_sum())
        .group_by("entry", maintain_order=True)
        .agg(
            pl.col("JournalCode", "year", "number").first(),
            pl.max_horizontal(pl.col(name).n_unique() for name in ("EcritureDate", "PieceRef", "ValidDate")).alias(
                "values"
            ),
            pl.col("debit").sum(),
            pl.col("credit").sum(),
            ((pl.col("debit") != 0) & (pl.col("credit") != 0)).any().alias("both"),
        )
        .with_columns(step=pl.col("number").diff().over("JournalCode", "year"))
    )
    if not entries.select(
        (pl.col("values") == 1).all()
        & (pl.col("debit") == pl.col("credit")).all()
        & ~pl.col("both").any()
        & (pl.col("step").is_null() | (pl.col("step") == 1)).all()
    ).item():
        return None
    number = pl.col("number")
    series = entries.group_by("JournalCode", "year").agg(number.first().alias("first"), number.last().alias("last"))
    return {(j, y): (first, last) for j, y, first, last in series.iter_rows()}


def check_bytes(data: bytes, fmt: FecFormat) -> list[Fault]:
    """Every fault of the file held in `data`: none at columnar speed when there is none."""
    if _clean(data, fmt):
        return []
    return check_lines(io.BytesIO(data), fmt)


def check_file(path: Path, fmt: FecFormat) -> list[Fault]:
    if path.stat().st_size <= FAST_MAX_BYTES:
        return check_bytes(path.read_bytes(), fmt)
    # Larger (a fiscal year): by columns too, in parts of about CHUNK_BYTES, so memory stays bounded;
    # anything a part does not clear, and the faults, come from the streaming line-by-line check.
    with path.open("rb") as handle:
        if _clean_in_parts(handle, fmt):
            return []
    with path.open("rb") as handle:
        return check_lines(handle, fmt)


CHUNK_BYTES = 4 * 1024 * 1024  # a part of a large file (16 MB parts took a 10-million-line year to 848 MB)


def _key(line: bytes, sep: bytes) -> tuple[bytes, bytes, bytes]:
    fields = line.split(sep, 4)
    return (fields[0], fields[2], fields[3][:4]) if len(fields) > 4 else (line, b"", b"")


def _parts(handle: BinaryIO, sep: bytes) -> Iterator[bytes]:
    """The file after its header in parts of whole lines that end where an entry ends (the entry of
    a part's last line is not continued in the next part)."""
    rest = b""
    while True:
        block = handle.read(CHUNK_BYTES)
        if not block:
            if rest:
                yield rest
            return
        rest += block
        end = rest.rfind(b"\r\n")
        if end < 0:
            continue
        # Walk back from the last whole line over the lines of the same entry.
        start = rest.rfind(b"\r\n", 0, end)  # the end of the line before the last one, or -1
        key = _key(rest[start + 2 if start >= 0 else 0 : end], sep)
        while start >= 0:
            before = rest.rfind(b"\r\n", 0, start)
            if _key(rest[before + 2 if before >= 0 else 0 : start], sep) != key:
                break
            start = before
        if start < 0:  # the part is one entry so far: read on
            continue
        cut = start + 2
        yield rest[:cut]
        rest = rest[cut:]


def _clean_in_parts(handle: BinaryIO, fmt: FecFormat) -> bool:
    """True only if check_lines would find no fault in the file: each part cleared by `_cleared`,
    and each journal and year's numbers continuing from one part to the next."""
    header = (fmt.char.join(COLUMNS) + "\r\n").encode(fmt.encoding)
    if handle.read(len(header)) != header:
        return False
    last: dict[tuple[str, str], int] = {}
    parts = 0
    for part in _parts(handle, fmt.char.encode(fmt.encoding)):
        parts += 1
        series = _cleared(header + part, fmt)
        if series is None:
            return False
        for key, (first, end) in series.items():
            if key in last and first != last[key] + 1:
                return False
            last[key] = end
    return parts > 0
