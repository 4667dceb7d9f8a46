"""The columnar check (fec_check.check_bytes) reports exactly what the line-by-line check_lines does, and the
companions written in a forked process are the bytes written in this one."""

from __future__ import annotations

import io
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backoffice.export import companions
from backoffice.export.fec import FecFormat, lines
from backoffice.export.fec_check import _clean, check_bytes, check_lines

TAB = FecFormat()
PIPE_UTF8 = FecFormat(separator="pipe", encoding="utf-8")


def line(number: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "journal_code": "AC",
        "entry_number": number,
        "entry_date": date(2026, 3, 14),
        "account": "604000",
        "aux_account": None,
        "account_label": "Achats de prestations",
        "piece_ref": f"F-{number}",
        "piece_date": date(2026, 3, 12),
        "label": f"Facture {number}",
        "debit": Decimal("1234.50"),
        "credit": Decimal("0.00"),
        "currency_amount": Decimal("1234.50"),
        "currency": "EUR",
        "validated_at": datetime(2026, 3, 14, 8, 30, tzinfo=UTC),
        "source_type": "invoice",
        "source_id": str(number),
        "dossier_number": f"BK-{number:04d}",
    }
    return {**row, **overrides}


def entry(number: int, total: str = "1234.50", **overrides: Any) -> list[dict[str, Any]]:
    value = Decimal(total)
    supplier = {"account": "401000", "aux_account": "AIR01", "account_label": "Fournisseurs"}
    return [
        line(number, debit=value, credit=Decimal(0), **overrides),
        line(number, debit=Decimal(0), credit=value, **{**supplier, **overrides}),
    ]


GOOD = (
    entry(1)
    + entry(2, "10.05")
    + entry(41, "7", journal_code="BQ")
    + entry(3, "0.50", label="Hôtel Łódź", currency="PLN", currency_amount=Decimal("-99.10"))
    + entry(812, entry_date=date(2025, 12, 31))
)


def both(raw: list[bytes], fmt: FecFormat = TAB) -> list[str]:
    expected = [str(f) for f in check_lines(raw, fmt)]
    assert [str(f) for f in check_bytes(b"".join(raw), fmt)] == expected
    return expected


@pytest.mark.parametrize("fmt", [TAB, PIPE_UTF8])
def test_a_good_file_is_cleared_by_columns(fmt: FecFormat) -> None:
    raw = list(lines(GOOD, fmt))
    assert _clean(b"".join(raw), fmt)  # the fast path answers: no line-by-line pass
    assert both(raw, fmt) == []


@pytest.mark.parametrize(
    "rows",
    [
        [*entry(1)[:1], {**entry(1)[1], "credit": Decimal("1234.49")}],  # not balanced
        entry(1) + entry(3),  # a gap
        entry(1) + entry(2) + entry(1),  # split
        entry(1) + entry(1, total="5.00"),  # the same number twice in a row: one unbalanced entry
        [line(1, debit=Decimal(5), credit=Decimal(5))],  # both debit and credit
        entry(1, account="60A000"),
        entry(1, account="٦٠٤000"),  # digits, but not ASCII ones: the line-by-line check decides
        entry(1, piece_ref=""),
        entry(1, label="\x1c"),  # str.strip() removes it; Rust's whitespace does not include it
        [entry(1)[0], {**entry(1)[1], "piece_ref": "OTHER"}],
        [entry(1)[0], {**entry(1)[1], "entry_date": date(2026, 3, 15)}],
        [entry(1)[0], {**entry(1)[1], "validated_at": datetime(2026, 3, 15, 9, tzinfo=UTC)}],
        entry(1, total="1234567890.10"),  # beyond the columnar amounts: checked line by line (and fine)
        entry(7) + entry(9, journal_code="VE") + entry(9),
    ],
)
def test_each_faulty_file_gets_the_line_by_line_faults(rows: list[dict[str, Any]]) -> None:
    raw = list(lines(rows, TAB))
    both(raw)


def test_raw_faults_header_columns_dates_amounts_encoding_and_line_ends() -> None:
    good = list(lines(entry(1), TAB))
    cases = [
        [b"JournalCode\tJournalLib\r\n", *good[1:]],
        [good[0], good[1].replace(b"\tAchats\t", b"\t"), good[2]],
        [good[0], good[1].replace(b"20260314", b"20260231", 1), good[2]],
        [good[0], good[1].replace(b"20260314", b"00000314", 1), good[2]],
        [good[0], good[1].replace(b"1234,50", b"1 234,50"), good[2]],
        [good[0], good[1].replace(b"1234,50", b"1234,500"), good[2]],
        [good[0], good[1].replace(b"\r\n", b"\n"), good[2]],
        [good[0], good[1].replace(b"\r\n", b"\r\r\n"), good[2]],
        [good[0], good[1], good[2].replace(b"\r\n", b"")],
        [good[0]],
        [],
    ]
    for raw in cases:
        assert not _clean(b"".join(raw), TAB)
        both(raw)
    assert both(list(lines(entry(1, label="Séjour"), TAB)), FecFormat(encoding="utf-8"))


FIELD_TEXT = st.text(alphabet=st.sampled_from(list("0123456789,- AZé\t|\x1c\xa0")), max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_change_to_a_good_file_gets_the_same_answer(data: st.DataObject) -> None:
    """One field of one line replaced by anything: the columnar check says what check_lines says."""
    raw = list(lines(GOOD, TAB))
    n = data.draw(st.integers(1, len(raw) - 1))
    fields = raw[n].decode("iso-8859-15").removesuffix("\r\n").split("\t")
    fields[data.draw(st.integers(0, 17))] = data.draw(FIELD_TEXT)
    raw[n] = ("\t".join(fields) + "\r\n").encode("iso-8859-15")
    both(raw)


def test_companions_written_aside_are_the_same_bytes(tmp_path: Path) -> None:
    rows = [{**row, "label": 'with "quotes", commas\nand a line break'} for row in GOOD]
    here, aside = tmp_path / "here", tmp_path / "aside"
    here.mkdir(), aside.mkdir()
    companions.write_csv(rows, here / "x.csv")
    companions.write_parquet(rows, here / "x.parquet")
    parent = os.getpid()
    with companions.written_aside(rows, aside / "x.csv", aside / "x.parquet"):
        assert os.getpid() == parent
    for name in ("x.csv", "x.parquet"):
        assert (aside / name).read_bytes() == (here / name).read_bytes()


def test_a_failing_body_leaves_no_companion(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), companions.written_aside(GOOD, tmp_path / "x.csv", tmp_path / "x.parquet"):
        raise RuntimeError("the FEC has faults")
    assert list(tmp_path.iterdir()) == []


def test_check_bytes_reads_like_a_file() -> None:
    raw = list(lines(GOOD, TAB))
    data = b"".join(raw)
    assert check_bytes(data, TAB) == check_lines(io.BytesIO(data), TAB) == []
