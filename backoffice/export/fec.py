"""The FEC file (Fichier des Écritures Comptables, LPF art. A47 A-1): journal lines in, file bytes out.

The layout is fixed by the regulation: a header line with the 18 column names in this order, one
line per journal line, tab or pipe between fields, dates as YYYYMMDD, amounts with a decimal comma
and no thousands separator, ISO-8859-15 unless UTF-8 is chosen. The writer streams: it takes an
iterable of journal lines and yields encoded lines, so a fiscal year never sits in memory.

Input rows carry the columns of `marts.accounting_entries` (see ../shared/contracts/outputs.md),
already sorted as the file must be (by validation, then journal and entry number). Text that the
format cannot carry is made safe rather than refused: a separator, tab or line break inside a label
becomes a space, and a character outside ISO-8859-15 is replaced by its closest ASCII letters
(`Łódź` -> `Lódz`: ó exists in ISO-8859-15, Ł and ź do not), so the file always parses; the
checks of `fec_check` then run on the result.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

COLUMNS = (
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
)

# The journals of marts.accounting_entries and the label the FEC shows for each.
JOURNALS = {
    "VE": "Ventes",
    "AC": "Achats",
    "BQ": "Banque",
    "OD": "Opérations diverses",
}

SEPARATORS = {"tab": "\t", "pipe": "|"}
ENCODINGS = ("iso-8859-15", "utf-8")
BOOK_CURRENCY = "EUR"


@dataclass(frozen=True)
class FecFormat:
    """How the file is written: `separator` 'tab' or 'pipe', `encoding` 'iso-8859-15' or 'utf-8'."""

    separator: str = "tab"
    encoding: str = "iso-8859-15"

    def __post_init__(self) -> None:
        if self.separator not in SEPARATORS:
            raise ValueError(f"separator: {self.separator!r} is not one of {', '.join(SEPARATORS)}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding: {self.encoding!r} is not one of {', '.join(ENCODINGS)}")

    @property
    def char(self) -> str:
        return SEPARATORS[self.separator]


def file_name(siren: str, day: date) -> str:
    """`<SIREN>FEC<YYYYMMDD>.txt`: the name the tax administration expects."""
    if len(siren) != 9 or not siren.isdigit():
        raise ValueError(f"siren: {siren!r} must be 9 digits")
    return f"{siren}FEC{day:%Y%m%d}.txt"


@functools.lru_cache(maxsize=1 << 16)  # zero and round amounts recur on many lines
def amount(value: Decimal | int | None) -> str:
    """`1234,50`: decimal comma, two decimals, no thousands separator, no sign (debit and credit
    are separate columns)."""
    return f"{Decimal(value or 0).copy_abs():.2f}".replace(".", ",")


def day(value: date | datetime | None) -> str:
    if value is None:
        return ""
    # A timestamp is written as the date it shows in its own time zone, as strftime would.
    return _yyyymmdd(value.date() if isinstance(value, datetime) else value)


@functools.lru_cache(maxsize=4096)  # a file has few distinct days and many lines
def _yyyymmdd(value: date) -> str:
    return f"{value:%Y%m%d}"


def _latin9_safe(text: str) -> str:
    """Characters ISO-8859-15 cannot hold, replaced by their base letters (or dropped)."""
    try:  # nearly every label fits: one encode instead of one per character
        text.encode("iso-8859-15")
        return text
    except UnicodeEncodeError:
        pass
    out = []
    for char in text:
        try:
            char.encode("iso-8859-15")
            out.append(char)
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            out.append(base or _STROKED.get(char, ""))
    return "".join(out)


# Letters NFKD does not decompose (a stroke is not a combining mark).
_STROKED = {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ø": "O", "ø": "o", "ı": "i"}


def text(value: Any, fmt: FecFormat) -> str:
    if value is None:
        return ""
    return _cleaned(str(value), fmt.char, fmt.encoding == "iso-8859-15")


@functools.lru_cache(maxsize=1 << 16)  # account labels, codes and journals repeat on most lines
def _cleaned(value: str, char: str, latin9: bool) -> str:
    cleaned = " ".join(value.replace(char, " ").split())
    return _latin9_safe(cleaned) if latin9 else cleaned


def fields(row: Mapping[str, Any], fmt: FecFormat) -> list[str]:
    """The 18 fields of one journal line."""
    journal = row["journal_code"]
    foreign = row.get("currency") not in (None, BOOK_CURRENCY)
    aux = row.get("aux_account")
    return [
        text(journal, fmt),
        text(JOURNALS.get(journal, journal), fmt),
        str(row["entry_number"]),
        day(row["entry_date"]),
        text(row["account"], fmt),
        text(row["account_label"], fmt),
        text(aux, fmt),
        # The contract has no label of its own for the auxiliary account: the account's label stands in.
        text(row.get("aux_account_label") or row["account_label"], fmt) if aux else "",
        text(row["piece_ref"], fmt),
        day(row["piece_date"]),
        text(row["label"], fmt),
        amount(row["debit"]),
        amount(row["credit"]),
        text(row.get("lettering"), fmt),
        day(row.get("lettering_date")),
        day(row["validated_at"]),
        amount(row["currency_amount"]) if foreign else "",
        text(row["currency"], fmt) if foreign else "",
    ]


def lines(rows: Iterable[Mapping[str, Any]], fmt: FecFormat) -> Iterator[bytes]:
    """The encoded file, line by line, header first. CRLF ends each line, as Windows-born
    accounting tools and the DGFiP's own test tool expect."""
    yield (fmt.char.join(COLUMNS) + "\r\n").encode(fmt.encoding)
    for row in rows:
        yield (fmt.char.join(fields(row, fmt)) + "\r\n").encode(fmt.encoding)
