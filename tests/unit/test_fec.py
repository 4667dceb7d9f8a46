"""The FEC writer and its checks: the layout of LPF art. A47 A-1, and every fault the checks must catch."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backoffice.export.fec import COLUMNS, FecFormat, amount, file_name, lines
from backoffice.export.fec_check import check_lines

TAB = FecFormat()


def line(**overrides: Any) -> dict[str, Any]:
    row = {
        "journal_code": "AC",
        "entry_number": 1,
        "entry_date": date(2026, 3, 14),
        "account": "604000",
        "aux_account": None,
        "account_label": "Achats de prestations",
        "piece_ref": "AIR01-F-2026-0042",
        "piece_date": date(2026, 3, 12),
        "label": "Facture AIR01 F-2026-0042",
        "debit": Decimal("1234.50"),
        "credit": Decimal("0.00"),
        "currency_amount": Decimal("1234.50"),
        "currency": "EUR",
        "validated_at": datetime(2026, 3, 14, 8, 30, tzinfo=UTC),
    }
    return {**row, **overrides}


def entry(number: int, total: str = "1234.50", **overrides: Any) -> list[dict[str, Any]]:
    """A balanced two-line entry: expense to the supplier's account."""
    value = Decimal(total)
    supplier = {"account": "401000", "aux_account": "AIR01", "account_label": "Fournisseurs"}
    return [
        line(entry_number=number, debit=value, credit=Decimal(0), **overrides),
        line(entry_number=number, debit=Decimal(0), credit=value, **{**supplier, **overrides}),
    ]


def written(rows: list[dict[str, Any]], fmt: FecFormat = TAB) -> list[bytes]:
    return list(lines(rows, fmt))


def test_layout_header_dates_amounts_and_encoding() -> None:
    out = written(entry(1))
    assert out[0] == ("\t".join(COLUMNS) + "\r\n").encode()
    fields = out[2].decode("iso-8859-15").rstrip("\r\n").split("\t")
    assert len(fields) == 18
    assert fields[:4] == ["AC", "Achats", "1", "20260314"]
    assert fields[6:8] == ["AIR01", "Fournisseurs"]
    assert fields[11:13] == ["0,00", "1234,50"]
    assert fields[15] == "20260314"
    assert fields[16:] == ["", ""]  # euro entries carry no currency amount
    assert check_lines(out, TAB) == []


def test_foreign_currency_pipe_separator_and_unsafe_text() -> None:
    fmt = FecFormat(separator="pipe")
    rows = entry(7, label="Hôtel Łódź | nuit\t2", currency="PLN", currency_amount=Decimal("-5300.00"))
    out = written(rows, fmt)
    fields = out[1].decode("iso-8859-15").rstrip("\r\n").split("|")
    assert fields[10] == "Hôtel Lódz nuit 2"  # ó is in ISO-8859-15, Ł and ź are not
    assert fields[16:] == ["5300,00", "PLN"]
    assert check_lines(out, fmt) == []
    utf8 = written(rows, FecFormat(encoding="utf-8"))
    assert "Łódź" in utf8[1].decode("utf-8")


@given(st.decimals(min_value=Decimal("-99999999.99"), max_value=Decimal("99999999.99"), places=2))
def test_amounts_have_a_decimal_comma_and_no_sign_or_thousands(value: Decimal) -> None:
    text = amount(value)
    assert "." not in text and " " not in text and "-" not in text
    assert Decimal(text.replace(",", ".")) == abs(value)


def test_file_name() -> None:
    assert file_name("123456789", date(2026, 11, 26)) == "123456789FEC20261126.txt"
    with pytest.raises(ValueError, match="siren"):
        file_name("12345", date(2026, 11, 26))


def problems(rows: list[dict[str, Any]]) -> list[str]:
    return [str(f) for f in check_lines(written(rows), TAB)]


def test_a_valid_file_of_several_journals_passes() -> None:
    rows = entry(1) + entry(2, "10.00") + entry(41, journal_code="BQ") + entry(3)
    assert problems(rows) == []


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([*entry(1)[:1], line(account="401000", debit=0, credit=Decimal("1234.49"))], "is not balanced"),
        (entry(1) + entry(3), "jumps from entry 1 to 3"),
        (entry(1) + entry(2) + entry(1), "is split"),
        ([line(debit=Decimal(5), credit=Decimal(5))], "not both"),
        (entry(1, account="60A000"), "does not start with three digits"),
        (entry(1, piece_ref=""), "PieceRef: is mandatory and empty"),
        (entry(1, label="   "), "EcritureLib: is mandatory and empty"),
        ([entry(1)[0], {**entry(1)[1], "piece_ref": "OTHER"}], "has two values"),
        ([entry(1)[0], {**entry(1)[1], "entry_date": date(2026, 3, 15)}], "has two values"),
    ],
)
def test_each_fault_is_found_and_named(rows: list[dict[str, Any]], expected: str) -> None:
    found = problems(rows)
    assert any(expected in p for p in found), found


def test_numbering_restarts_with_the_fiscal_year() -> None:
    december = entry(812, entry_date=date(2026, 12, 31))
    january = entry(1, entry_date=date(2027, 1, 2), validated_at=datetime(2027, 1, 2, tzinfo=UTC))
    assert problems(december + january) == []


def test_raw_line_faults_header_columns_dates_amounts_encoding() -> None:
    good = written(entry(1))
    header = b"JournalCode\tJournalLib\r\n"
    assert "header must be" in str(check_lines([header, *good[1:]], TAB)[0])
    short = good[1].replace(b"\tAchats\t", b"\t")
    assert "has 17 fields" in str(check_lines([good[0], short, good[2]], TAB)[0])
    bad_date = good[1].replace(b"20260314", b"20260231", 1)
    assert any("EcritureDate" in str(f) for f in check_lines([good[0], bad_date, good[2]], TAB))
    thousands = good[1].replace(b"1234,50", b"1 234,50")
    assert any("Debit" in str(f) for f in check_lines([good[0], thousands, good[2]], TAB))
    assert any("not valid utf-8" in str(f) for f in check_lines(good, FecFormat(encoding="utf-8"))) is False
    latin = written(entry(1, label="Séjour"))
    assert any("not valid utf-8" in str(f) for f in check_lines(latin, FecFormat(encoding="utf-8")))
    assert "empty" in str(check_lines([], TAB)[0])


def test_pairs_go_together() -> None:
    rows = entry(1)
    rows[1] = {**rows[1], "aux_account_label": None}
    assert problems(rows) == []  # the account label stands in for a missing auxiliary label
    out = written(entry(1))
    fields = out[2].split(b"\t")
    fields[7] = b""
    assert any("go together" in str(f) for f in check_lines([out[0], out[1], b"\t".join(fields)], TAB))


def test_the_same_number_in_two_fiscal_years_is_two_entries() -> None:
    """A late December entry exported in a January file beside January's own entry 1."""
    december = entry(1, entry_date=date(2025, 12, 31), validated_at=datetime(2025, 12, 31, 9, tzinfo=UTC))
    out = written(december + entry(1) + entry(2))
    assert check_lines(out, TAB) == []
    split = written(entry(1) + december + entry(1, total="5.00"))
    assert any("is split" in str(fault) for fault in check_lines(split, TAB))
