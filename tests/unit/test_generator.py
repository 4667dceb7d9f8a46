"""The synthetic data generator: reproducible, counted, and its small rules hold."""

from __future__ import annotations

import csv
import random
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from backoffice.generator import GenerationSummary, generate
from backoffice.generator.amounts import fmt, parse, split_vat
from backoffice.generator.ground_truth import billing_status
from backoffice.generator.supplier_invoices import typo

START = date(2026, 10, 20)  # spans the switch back to winter time


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, GenerationSummary]]:
    out = {}
    for name, seed in (("a", 5), ("b", 5), ("other", 6)):
        root = tmp_path_factory.mktemp(name)
        out[name] = (root, generate(root, START, 10, 20, seed))
    return out


def test_same_seed_gives_byte_identical_files(runs: dict[str, tuple[Path, GenerationSummary]]) -> None:
    a, b = _files(runs["a"][0]), _files(runs["b"][0])
    assert a.keys() == b.keys()
    different = [name for name in a if a[name] != b[name]]
    assert not different
    assert any(name.endswith(".pdf") for name in a) and any(name.endswith(".xml") for name in a)


def test_another_seed_gives_other_data(runs: dict[str, tuple[Path, GenerationSummary]]) -> None:
    a, other = _files(runs["a"][0]), _files(runs["other"][0])
    for name in (
        "bookings/2026-10-20/bookings.jsonl",
        "payments/2026-10-25/payments.csv",
        "ground_truth/billing_status.csv",
    ):
        assert a[name] != other[name], name
    assert a["reference/suppliers.csv"] == other["reference/suppliers.csv"]


def test_summary_counts_what_was_written(runs: dict[str, tuple[Path, GenerationSummary]]) -> None:
    root, summary = runs["a"]
    files = _files(root)
    assert summary.dossiers == 200
    assert summary.files == len(files)
    with (root / "ground_truth" / "malformed.csv").open(encoding="utf-8") as f:
        malformed = list(csv.DictReader(f))
    assert summary.malformed_records == len(malformed) > 0
    jsonl_lines = sum(files[n].count(b"\n") for n in files if n.endswith(".jsonl"))
    bad_bookings = sum(1 for r in malformed if r["source"] == "bookings")
    assert summary.booking_snapshots == jsonl_lines - bad_bookings
    first_snapshots = set()
    for name in files:
        if name.endswith(".jsonl"):
            first_snapshots |= set(re.findall(rb'"dossier_number":"(BK-\d{4}-\d{6})","version":1,', files[name]))
    assert len(first_snapshots) >= summary.dossiers  # every dossier, plus the malformed ghosts
    matches = files["ground_truth/invoice_line_matches.csv"].count(b"\n") - 1
    assert summary.invoice_lines == matches > 0
    payment_rows = sum(files[n].count(b"\n") - 1 for n in files if n.startswith("payments/"))
    assert summary.payments == payment_rows - sum(1 for r in malformed if r["source"] == "payments")


def test_progress_is_reported_after_each_day(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    generate(tmp_path, START, 3, 2, 1, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, START, 0, 10, 1)


@pytest.mark.parametrize(
    ("expected", "invoiced", "status"),
    [
        (10000, 0, "not_invoiced"),
        (10000, 10000, "invoiced"),
        (10000, 9900, "invoiced"),
        (10000, 10100, "invoiced"),
        (10000, 9899, "partially_invoiced"),
        (10000, 10101, "over_invoiced"),
        (0, 500, "over_invoiced"),
        (0, 0, "invoiced"),
    ],
)
def test_billing_status_rules(expected: int, invoiced: int, status: str) -> None:
    assert billing_status(expected, invoiced) == status


def test_a_typo_never_forms_a_valid_dossier_number() -> None:
    rng = random.Random(3)
    for n in [*range(1, 2000), 123456, 999999, 1_000_000, 1_234_567]:
        number = f"BK-2026-{n:06d}"
        wrong = typo(number, rng)
        assert wrong != number
        assert not re.fullmatch(r"BK-\d{4}-\d{6,}", wrong)


def test_invoice_amounts_keep_incl_equal_to_excl_times_rate() -> None:
    rng = random.Random(8)
    for _ in range(5000):
        target = rng.randint(-50_000, 500_000)
        rate = rng.choice(("0", "0.055", "0.10", "0.20"))
        excl, incl = split_vat(target, rate)
        assert abs(Decimal(excl) * (1 + Decimal(rate)) - incl) <= 1  # one cent
        assert abs(incl - target) <= 1


def test_amount_strings_round_trip() -> None:
    for cents in (0, 5, -5, 100, -12345, 99_999_999):
        text = fmt(cents)
        assert re.fullmatch(r"-?\d+\.\d{2}", text)
        assert parse(text) == cents
