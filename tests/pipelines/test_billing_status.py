"""Billing status and matching on generated data, checked against an independent computation.

The status rules of outputs.md are recomputed here in Python from the landing files themselves
(the final snapshot of each dossier) and the matches the mart publishes; matching is scored
against the generator's ground truth (bench/matching.py).
"""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from factories import generated_days
from sqlalchemy.engine import Engine

from backoffice.dbt_runner import run_dbt

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/ is not an installed package
from bench.matching import measure

START = date(2026, 1, 5)
DAYS = 60
TOLERANCE = Decimal("1.00")
SELECT = "+supplier_invoice_line_matches +supplier_billing_status"


def _status(expected: Decimal, invoiced: Decimal) -> str:
    if invoiced == 0 and expected != 0:
        return "not_invoiced"
    if abs(invoiced - expected) <= TOLERANCE:
        return "invoiced"
    if invoiced > expected + TOLERANCE:
        return "over_invoiced"
    return "partially_invoiced"


def _expected_from_landing(landing: Path) -> dict[tuple[str, str], tuple[str, Decimal]]:
    """(dossier, supplier) -> (currency, expected) from the highest version of each dossier."""
    with (landing / "ground_truth" / "malformed.csv").open(encoding="utf-8") as f:
        broken = {r["record_key"] for r in csv.DictReader(f) if r["source"] == "bookings"}
    latest: dict[str, dict] = {}
    for path in sorted((landing / "bookings").glob("*/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                doc = json.loads(line)
                key = (doc["version"], doc["updated_at"])
                number = doc["dossier_number"]
            except (ValueError, KeyError, TypeError):
                continue  # the generator's malformed records
            if number in broken:
                continue  # a record broken on purpose (bad date, quantity...): ingestion refuses it
            if number not in latest or key > (latest[number]["version"], latest[number]["updated_at"]):
                latest[number] = doc
    expected: dict[tuple[str, str], tuple[str, Decimal]] = {}
    for number, doc in latest.items():
        if doc["status"] not in ("confirmed", "cancelled"):
            continue
        for service in doc["services"]:
            if service["status"] != "confirmed":
                continue
            for ln in service["lines"]:
                key = (number, service["supplier_code"])
                currency, total = expected.get(key, (ln["purchase_currency"], Decimal(0)))
                expected[key] = (currency, total + ln["quantity"] * Decimal(str(ln["unit_purchase_amount"])))
    return expected


def test_billing_status_and_matching_on_generated_data(db: Engine, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generated_days(db, landing, START, DAYS, 12, seed=11)

    # cautious: leave out tests that also read models outside this slice (the accounting ones)
    run_dbt(["build", "--select", SELECT, "--indirect-selection", "cautious"])

    with db.connect() as conn:
        matches = conn.execute(
            sa.text(
                """SELECT dossier_number, supplier_code, currency, kind, amount_incl_tax
                   FROM marts.supplier_invoice_line_matches WHERE state IN ('auto_matched', 'confirmed')"""
            )
        ).all()
        mart = {
            (r.dossier_number, r.supplier_code): (r.currency, r.expected_amount, r.invoiced_amount, r.status)
            for r in conn.execute(sa.text("SELECT * FROM marts.supplier_billing_status"))
        }
    invoiced: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for dossier, supplier, _currency, kind, amount in matches:
        invoiced[(dossier, supplier)] += -amount if kind == "credit_note" else amount
    expected = _expected_from_landing(landing)
    computed = {}
    for key in set(expected) | set(invoiced):
        currency, e = expected.get(key, (None, Decimal(0)))
        i = invoiced.get(key, Decimal(0))
        if e != 0 or key in invoiced:
            computed[key] = (currency, e, i, _status(e, i))
    assert len(mart) > 300
    assert {k: v[1:] for k, v in mart.items()} == {k: v[1:] for k, v in computed.items()}
    assert all(v[0] == mart[k][0] for k, v in computed.items() if v[0] is not None)
    assert {v[3] for v in mart.values()} == {"not_invoiced", "invoiced", "partially_invoiced", "over_invoiced"}

    score = measure(db, landing / "ground_truth")
    assert score.lines > 1000, score.report()
    assert score.precision >= 0.999, score.report()
    # Measured on generated data (docs/billing.md): automatic matches cover ~97-98 % of the lines
    # that have a dossier (issue 4's target is 95 %); right suggestions add about a point.
    assert score.recall >= 0.95, score.report()
    assert score.recall_with_suggestions >= 0.96, score.report()

    _decisions_show_at_once(db)


def _decisions_show_at_once(db: Engine) -> None:
    """An accountant's decision changes the marts with no dbt run, and is never edited in place."""
    line_of = "supplier_code = :s AND invoice_number = :i AND line_number = :n"
    with db.begin() as conn:
        s, i, n, dossier = conn.execute(
            sa.text(
                """SELECT supplier_code, invoice_number, line_number, dossier_number
                   FROM marts.supplier_invoice_line_matches WHERE state = 'auto_matched' AND kind = 'invoice'
                   ORDER BY 1, 2, 3 LIMIT 1"""
            )
        ).one()
        before = conn.execute(
            sa.text(
                """SELECT invoiced_amount FROM marts.supplier_billing_status
                   WHERE dossier_number = :d AND supplier_code = :s"""
            ),
            {"d": dossier, "s": s},
        ).scalar_one()
        amount = conn.execute(
            sa.text(f"SELECT amount_incl_tax FROM app.supplier_invoice_lines WHERE {line_of}"), {"s": s, "i": i, "n": n}
        ).scalar_one()
        conn.execute(
            sa.text(
                """INSERT INTO app.reconciliation_decisions
                       (supplier_code, invoice_number, line_number, decision, dossier_number, decided_by)
                   VALUES (:s, :i, :n, 'reject', :d, 'compta')"""
            ),
            {"s": s, "i": i, "n": n, "d": dossier},
        )
    with db.connect() as conn:
        state, proposed = conn.execute(
            sa.text(f"SELECT state, dossier_number FROM marts.supplier_invoice_line_matches WHERE {line_of}"),
            {"s": s, "i": i, "n": n},
        ).one()
        after = conn.execute(
            sa.text(
                """SELECT coalesce(sum(invoiced_amount), 0) FROM marts.supplier_billing_status
                   WHERE dossier_number = :d AND supplier_code = :s"""
            ),
            {"d": dossier, "s": s},
        ).scalar_one()
    assert state != "auto_matched" or proposed != dossier
    assert proposed != dossier or state == "rejected"
    assert after == before - amount
    with pytest.raises(sa.exc.DBAPIError, match="immutable"), db.begin() as conn:
        conn.execute(sa.text("UPDATE app.reconciliation_decisions SET decision = 'confirm'"))
