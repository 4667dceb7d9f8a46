"""A file larger than FAST_MAX_BYTES (a fiscal year) is checked by columns in parts cut where an entry
ends, the numbers' continuity carried from part to part; whatever the parts do not clear gets the
line-by-line check's faults. The sizes are made small here so a few hundred lines span many parts."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backoffice.export import fec_check
from backoffice.export.fec import FecFormat, lines
from backoffice.export.fec_check import _clean_in_parts, _parts, check_file, check_lines


def entry(number: int, total: str, journal_code: str = "AC", label: str = "Facture") -> list[dict[str, Any]]:
    value = Decimal(total)
    line = {
        "journal_code": journal_code,
        "entry_number": number,
        "entry_date": date(2026, 3, 14),
        "account_label": "Achats",
        "piece_ref": f"{journal_code}-{number}",
        "piece_date": date(2026, 3, 12),
        "label": label,
        "currency_amount": value,
        "currency": "EUR",
        "validated_at": datetime(2026, 3, 14, 8, 30, tzinfo=UTC),
    }
    return [
        {**line, "account": "604000", "aux_account": None, "debit": value, "credit": Decimal(0)},
        {**line, "account": "401000", "aux_account": "AIR01", "debit": Decimal(0), "credit": value},
    ]


TAB = FecFormat()
PIPE_UTF8 = FecFormat(separator="pipe", encoding="utf-8")


def year(n: int = 300) -> list[dict[str, Any]]:
    rows = []
    for i in range(1, n + 1):
        rows += entry(i, f"{i}.{i % 100:02d}", label=f"Facture {i} Łódź")
        if i % 3 == 0:  # a three-line entry now and then, in another journal
            bq = entry(i // 3, "12.00", journal_code="BQ")
            rows += [*bq, {**bq[1], "account": "471000"}]
            rows[-2] = {**rows[-2], "credit": rows[-2]["credit"] / 2}
            rows[-1] = {**rows[-1], "credit": rows[-1]["credit"] / 2}
    return rows


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fec_check, "FAST_MAX_BYTES", 1024)
    monkeypatch.setattr(fec_check, "CHUNK_BYTES", 997)


def write(tmp_path: Path, rows: list[dict[str, Any]], fmt: FecFormat) -> Path:
    path = tmp_path / "year.txt"
    path.write_bytes(b"".join(lines(rows, fmt)))
    return path


@pytest.mark.parametrize("fmt", [TAB, PIPE_UTF8], ids=["tab", "pipe-utf8"])
def test_a_good_year_is_cleared_part_by_part(small_parts: None, tmp_path: Path, fmt: FecFormat) -> None:
    path = write(tmp_path, year(), fmt)
    data = path.read_bytes()
    _, _, body = data.partition(b"\r\n")
    parts = list(_parts(io.BytesIO(body), fmt.char.encode()))
    assert len(parts) > 20 and b"".join(parts) == body
    for before, after in itertools.pairwise(parts):  # never an entry cut in two
        last = before.rstrip(b"\r\n").rsplit(b"\r\n", 1)[-1].split(fmt.char.encode())
        first = after.split(b"\r\n", 1)[0].split(fmt.char.encode())
        assert (last[0], last[2]) != (first[0], first[2])
    with path.open("rb") as handle:
        assert _clean_in_parts(handle, fmt)
    assert check_file(path, fmt) == []


def faults_of(path: Path, fmt: FecFormat = TAB) -> list[str]:
    with path.open("rb") as handle:
        expected = [str(f) for f in check_lines(handle, fmt)]
    assert [str(f) for f in check_file(path, fmt)] == expected
    return expected


def test_faults_across_parts_are_the_line_by_line_faults(small_parts: None, tmp_path: Path) -> None:
    rows = year()
    # A gap in AC's numbers, an entry whose lines are apart, an unbalanced entry, a bad date, far apart.
    gap = [r for r in rows if not (r["journal_code"] == "AC" and r["entry_number"] == 100)]
    assert faults_of(write(tmp_path, gap, TAB)) == [
        "line 299, EcritureNum: journal AC jumps from entry 99 to 101: numbers must be continuous"
    ]
    moved = list(rows)
    split = next(i for i, r in enumerate(moved) if r["journal_code"] == "AC" and r["entry_number"] == 150)
    moved.insert(split + 40, moved.pop(split + 1))
    assert any("is split" in f for f in faults_of(write(tmp_path, moved, TAB)))
    unbalanced = [{**r, "credit": r["credit"] + 1} if r["entry_number"] == 250 and r["credit"] else r for r in rows]
    assert any("not balanced" in f for f in faults_of(write(tmp_path, unbalanced, TAB)))
    dated = [{**r, "entry_date": date(2025, 12, 31)} if r["entry_number"] == 7 else r for r in rows]
    assert faults_of(write(tmp_path, dated, TAB))  # two fiscal years now: AC 7 of 2025 starts a series
    # A file cut short in the middle of a line.
    path = write(tmp_path, rows, TAB)
    path.write_bytes(path.read_bytes()[:-7])
    assert faults_of(path)
