"""The Devis of one dossier is read through indexes: the dossier number reaches every table of
marts.dossier_price_lines (a view that materialised the Devis of every dossier first cost 0.6 s at
100,000 dossiers, 10 s at a million), and the reversal pairs are still found within the dossier."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import factories as f
import pytest
import sqlalchemy as sa

from backoffice.queries.dossier import DEVIS_SQL, dossier_view

TABLES = {"price_lines", "dossiers", "services"}


@pytest.fixture(scope="session")
def price_lines_mart(database_url: str) -> None:
    f.build_price_lines_mart(database_url)


def _reverse(db: sa.Engine, number: str, line_id: str) -> None:
    """A modification reversing line `line_id` of dossier `number`, as the services write one."""
    with db.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.price_lines (dossier_number, service_id, line_id, origin, label, quantity,
                       unit_sale_amount, sale_currency, unit_purchase_amount, purchase_currency, vat_rate,
                       supplier_code, reverses_id, created_by)
                   SELECT dossier_number, service_id, 'REV-' || id, 'modification', label, quantity,
                          -unit_sale_amount, sale_currency, -unit_purchase_amount, purchase_currency, vat_rate,
                          supplier_code, id, 'alice'
                   FROM app.price_lines WHERE dossier_number = :number AND line_id = :line_id"""
            ),
            {"number": number, "line_id": line_id},
        )


def _scans(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node] if node.get("Relation Name") in TABLES or node["Node Type"] == "CTE Scan" else []
    for child in node.get("Plans", []):
        found += _scans(child)
    return found


def test_one_dossier_devis_is_read_by_its_number(db: sa.Engine, price_lines_mart: None) -> None:
    lines = [
        {"line_id": "L1", "service_id": "S1", "unit_sale_amount": "700.00"},
        {"line_id": "L2", "service_id": "S1", "unit_sale_amount": "300.00"},
    ]
    number, other = f.dossier(db, lines=lines), f.dossier(db, lines=lines)
    _reverse(db, number, "L1")
    with db.connect() as conn:
        # Without sequential scans to fall back on, a filter that does not reach a table leaves a
        # scan of it with no condition on the dossier number.
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = conn.execute(sa.text("EXPLAIN (FORMAT JSON) " + DEVIS_SQL), {"number": number}).scalar_one()
        scans = _scans(plan[0]["Plan"])
        assert {s.get("Relation Name") for s in scans} == TABLES
        for scan in scans:
            condition = scan.get("Index Cond") or scan.get("Recheck Cond") or ""
            assert scan["Node Type"] != "CTE Scan" and number in condition, scan
        conn.rollback()
        devis, untouched = dossier_view(conn, number).devis, dossier_view(conn, other).devis
    assert [(line.label, line.origin, line.is_active) for line in devis.lines] == [
        ("Double room", "booking", False),
        ("Double room", "booking", True),
        ("Double room", "modification", False),
    ]
    assert devis.sale_total == Decimal("300.00")
    assert [line.is_active for line in untouched.lines] == [True, True]
    assert untouched.sale_total == Decimal("1000.00")
