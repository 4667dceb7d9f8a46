"""The generated landing zone follows landing.md, except exactly the records it says are malformed."""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from landing_validator import DOSSIER_NUMBER, Landing, validate_landing

from backoffice.generator import generate

# Long enough for hotels to invoice after the stay, small enough to stay fast.
DAYS, PER_DAY, SEED = 45, 10, 11


@pytest.fixture(scope="module")
def landing_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("landing")
    generate(root, date(2026, 3, 20), DAYS, PER_DAY, SEED)  # spans the switch to summer time
    return root


@pytest.fixture(scope="module")
def landing(landing_root: Path) -> Landing:
    return validate_landing(landing_root)


def _truth(root: Path, name: str) -> list[dict[str, str]]:
    with (root / "ground_truth" / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_only_the_listed_malformed_records_break_the_contract(landing_root: Path, landing: Landing) -> None:
    listed = {(r["file"], int(r["line"])): r["reason"] for r in _truth(landing_root, "malformed.csv")}
    found: dict[tuple[str, int], set[str]] = defaultdict(set)
    for v in landing.violations:
        found[(v.file, v.line)].add(v.reason)
    unexpected = {k: v for k, v in found.items() if k not in listed}
    assert not unexpected, f"violations not in ground truth: {unexpected}"
    assert set(listed) == set(found), f"listed but valid: {set(listed) - set(found)}"
    for key, reason in listed.items():
        assert reason in found[key], f"{key}: listed as {reason}, found {found[key]}"


def test_every_malformed_kind_occurs(landing_root: Path) -> None:
    kinds = Counter((r["source"], r["reason"]) for r in _truth(landing_root, "malformed.csv"))
    expected = {("bookings", k) for k in ("not_json", "missing_field", "bad_date", "bad_quantity", "unknown_currency")}
    expected |= {("payments", k) for k in ("bad_date", "unknown_currency", "bad_enum", "bad_amount")}
    expected |= {("supplier_invoices", k) for k in ("amount_mismatch", "bad_date", "unknown_currency", "missing_field")}
    assert expected <= set(kinds)


def test_all_three_invoice_formats_are_delivered_and_valid(landing_root: Path, landing: Landing) -> None:
    suffixes = Counter(p.suffix for p in (landing_root / "supplier_invoices").glob("*/*"))
    assert suffixes[".csv"] and suffixes[".xml"] and suffixes[".pdf"]
    assert not [v for v in landing.violations if v.reason == "bad_document"]
    kinds = {line.kind for line in landing.invoice_lines.values()}
    assert kinds == {"invoice", "credit_note"}
    assert {"EUR", "USD", "GBP", "MAD", "CHF"} <= {line.currency for line in landing.invoice_lines.values()}


def test_some_invoices_are_resent_identically(landing_root: Path) -> None:
    documents = Counter(p.name for p in (landing_root / "supplier_invoices").glob("*/*") if p.suffix != ".csv")
    csv_keys: Counter[tuple[str, str, str]] = Counter()
    for path in (landing_root / "supplier_invoices").glob("*/*.csv"):
        with path.open(encoding="utf-8", newline="") as f:
            csv_keys.update((r["supplier_code"], r["invoice_number"], r["line_number"]) for r in csv.DictReader(f))
    assert max(documents.values()) > 1 or max(csv_keys.values()) > 1


def test_matches_cover_every_valid_invoice_line_once(landing_root: Path, landing: Landing) -> None:
    truth = _truth(landing_root, "invoice_line_matches.csv")
    keys = [(r["supplier_code"], r["invoice_number"], int(r["line_number"])) for r in truth]
    assert len(keys) == len(set(keys))
    assert set(keys) == set(landing.invoice_lines)
    assert {r["reference_kind"] for r in truth} == {
        "dossier_number",
        "supplier_reference",
        "traveller_name",
        "typo",
        "empty",
    }


def test_reference_kinds_describe_the_references(landing_root: Path, landing: Landing) -> None:
    final = {number: history[-1][1] for number, history in landing.snapshots.items()}
    for r in _truth(landing_root, "invoice_line_matches.csv"):
        line = landing.invoice_lines[(r["supplier_code"], r["invoice_number"], int(r["line_number"]))]
        number, kind, ref = r["dossier_number"], r["reference_kind"], line.reference
        if number:
            assert number in final, number
        if kind == "dossier_number":
            assert ref == number
        elif kind == "supplier_reference":
            assert ref in {s["supplier_reference"] for s in final[number]["services"]}
        elif kind == "traveller_name":
            names = {t["last_name"].upper() for t in final[number]["travellers"]}
            assert any(name in ref.upper() for name in names), (ref, names)
        elif kind == "typo":
            assert ref != number and not DOSSIER_NUMBER.match(ref) and re.sub(r"\D", "", ref)
        else:
            assert kind == "empty" and ref == ""


def _status(expected: Decimal, invoiced: Decimal, tolerance: Decimal = Decimal("1.00")) -> str:
    if invoiced == 0 and expected != 0:
        return "not_invoiced"
    if abs(invoiced - expected) <= tolerance:
        return "invoiced"
    if invoiced > expected + tolerance:
        return "over_invoiced"
    assert 0 < invoiced < expected - tolerance
    return "partially_invoiced"


def test_billing_status_truth_follows_from_the_files(landing_root: Path, landing: Landing) -> None:
    """Recompute expected and invoiced amounts from the landing files and the true matches."""
    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    currency: dict[tuple[str, str], str] = {}
    for number, history in landing.snapshots.items():
        doc = history[-1][1]
        for s in doc["services"]:
            for ln in s["lines"]:
                currency[(number, s["supplier_code"])] = ln["purchase_currency"]
            if doc["status"] in ("confirmed", "cancelled") and s["status"] == "confirmed":
                expected[(number, s["supplier_code"])] += sum(
                    ln["quantity"] * Decimal(ln["unit_purchase_amount"]) for ln in s["lines"]
                )
    invoiced: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in _truth(landing_root, "invoice_line_matches.csv"):
        if r["dossier_number"]:
            line = landing.invoice_lines[(r["supplier_code"], r["invoice_number"], int(r["line_number"]))]
            sign = -1 if line.kind == "credit_note" else 1
            invoiced[(r["dossier_number"], r["supplier_code"])] += sign * line.amount_incl_tax
    keys = {k for k, v in expected.items() if v != 0} | set(invoiced)
    truth = {(r["dossier_number"], r["supplier_code"]): r for r in _truth(landing_root, "billing_status.csv")}
    assert set(truth) == keys
    for key in keys:
        row = truth[key]
        assert Decimal(row["expected_amount"]) == expected[key], key
        assert Decimal(row["invoiced_amount"]) == invoiced[key], key
        assert row["currency"] == currency[key]
        assert row["status"] == _status(expected[key], invoiced[key]), key
    statuses = Counter(r["status"] for r in truth.values())
    assert set(statuses) == {"not_invoiced", "invoiced", "partially_invoiced", "over_invoiced"}


def test_the_data_looks_like_a_travel_business(landing: Landing) -> None:
    finals = [history[-1][1] for history in landing.snapshots.values()]
    assert {d["channel"] for d in finals} == {"web", "agency", "call_center", "partner"}
    assert len({d["brand"] for d in finals}) >= 3
    assert {d["client"]["language"] for d in finals} == {"fr", "en"}
    assert {"confirmed", "cancelled"} <= {d["status"] for d in finals}
    countries = {d["destination_country"] for d in finals}
    assert countries & {"ES", "FR", "GR", "IT", "PT"} and countries & {"MA", "US", "GB", "CH", "TH"}
    assert {t["kind"] for d in finals for t in d["travellers"]} == {"adult", "child", "infant"}
    assert {e["kind"] for d in finals for e in d["payment_schedule"]} >= {"deposit", "balance"}
    assert any(
        max(v for _, v in ((h[0], h[1]["version"]) for h in history)) > 1 for history in landing.snapshots.values()
    )
    statuses = {p["status"] for p in landing.payments}
    assert {"captured", "failed"} <= statuses
    assert any(p["dossier_number"] == "" for p in landing.payments)
    assert len({p["method"] for p in landing.payments}) >= 4
