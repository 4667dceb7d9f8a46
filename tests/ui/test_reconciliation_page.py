"""The reconciliation workbench page, driven through AppTest against the real database and marts.

Data as in tests/integration/test_reconciliation.py (bench.reconciliation.load_lines, small):
20 suggested lines (HOTBENCH FB-000000 and FB-000001) and 20 unmatched ones (FB-000002, FB-000003),
plus, written before, supplier UISUP's invoice UI-1 whose lines name two dossiers that each expect
800.00: 806.00 (a difference of +6.00) and 830.00 (+30.00), matched automatically.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest
from test_app import log_in

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.reconciliation import load_lines

DECIDE = "FormSubmitter:reconciliation_action-Enregistrer la décision"
FILTER = "FormSubmitter:reconciliation_filters-Filtrer"


@pytest.fixture(scope="module")
def workbench_data(engine: sa.Engine, database_url: str) -> Iterator[sa.Engine]:
    with engine.begin() as conn:
        tables = conn.execute(
            sa.text(
                """SELECT schemaname || '.' || tablename FROM pg_tables
                   WHERE schemaname IN ('raw', 'app', 'audit', 'intermediate', 'marts')
                     AND tablename NOT IN ('roles', 'permissions', 'role_permissions')"""
            )
        ).scalars()
        conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    _differences(engine)
    load_lines(engine, database_url, open_lines=20, suggested=20, billing=True)
    f.user(engine, "carla", "accountant", f.PASSWORD, locale="fr")
    st.cache_data.clear()
    yield engine
    st.cache_data.clear()


def _differences(engine: sa.Engine) -> None:
    f.supplier(engine, "UISUP")
    numbers = [
        f.dossier(
            engine,
            services=[{"supplier_code": "UISUP"}],
            lines=[{"service_id": "S1", "quantity": 2, "unit_purchase_amount": "400.00", "supplier_code": "UISUP"}],
        )
        for _ in range(2)
    ]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.supplier_invoices (supplier_code, invoice_number, kind, invoice_date, currency,
                       sha256, source_file)
                   VALUES ('UISUP', 'UI-1', 'invoice', current_date, 'EUR', md5('UI-1'), 'test')"""
            )
        )
        conn.execute(
            sa.text(
                """INSERT INTO app.supplier_invoice_lines (supplier_code, invoice_number, line_number, reference,
                       description, amount_excl_tax, vat_rate, amount_incl_tax)
                   VALUES ('UISUP', 'UI-1', :n, :ref, 'Sejour', :amount, 0, :amount)"""
            ),
            [
                {"n": 1, "ref": numbers[0], "amount": Decimal("806.00")},
                {"n": 2, "ref": numbers[1], "amount": Decimal("830.00")},
            ],
        )


def open_workbench() -> AppTest:
    return log_in("carla").switch_page("app_pages/reconciliation.py").run()


def reference(at: AppTest):
    return next(t for t in at.text_input if t.label == "Référence")


def decisions(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    """SELECT invoice_number, line_number, decision, dossier_number, amount_incl_tax, decided_by
                       FROM app.reconciliation_decisions ORDER BY id"""
                )
            )
        ]


def test_filter_then_confirm_the_suggestion(workbench_data: sa.Engine) -> None:
    at = open_workbench()
    assert not at.exception
    assert len(at.dataframe[0].value) == 40  # every open line, suggested and unmatched
    reference(at).input("zqaaaaac")  # reference: FB-000000 line 2 only
    at.button(key=FILTER).click().run()
    table = at.dataframe[0].value
    assert list(table["Ligne"]) == ["HOTBENCH / FB-000000 / 2"]
    assert list(table["Candidats"]) == ["BK-2098-000002 (0.72)"]
    at.radio(key="w_recon_action").set_value("confirm")
    at.button(key=DECIDE).click().run()
    assert not at.error
    assert [s.value for s in at.success] == ["Décision enregistrée pour HOTBENCH / FB-000000 / 2."]
    assert decisions(workbench_data)[-1] == ("FB-000000", 2, "confirm", "BK-2098-000002", None, "carla")


def test_a_wrong_split_names_the_field_and_a_right_one_is_recorded(workbench_data: sa.Engine) -> None:
    at = open_workbench()
    at.multiselect(key=at.multiselect[0].key).set_value(["unmatched"])
    at.button(key=FILTER).click().run()
    assert at.selectbox(key="w_recon_line").value == "HOTBENCH / FB-000002 / 1"  # 120.00
    at.radio(key="w_recon_action").set_value("manual")
    at.text_area(key="w_recon_split").input("BK-2098-000003=100.00\nBK-2098-000004=10.00")
    at.text_input(key="w_recon_reason").input("deux chambres")
    at.button(key=DECIDE).click().run()
    assert [e.value for e in at.error] == ["allocations: the amounts add up to 110.00, the line is 120.00"]
    at.text_area(key="w_recon_split").input("BK-2098-000003=100.00\nBK-2098-000004=20.00")
    at.button(key=DECIDE).click().run()
    assert not at.error
    assert decisions(workbench_data)[-2:] == [
        ("FB-000002", 1, "manual", "BK-2098-000003", 100, "carla"),
        ("FB-000002", 1, "manual", "BK-2098-000004", 20, "carla"),
    ]
    # The line left the open ones; undoing brings it back.
    assert "HOTBENCH / FB-000002 / 1" not in list(at.dataframe[0].value["Ligne"])


def test_bulk_confirm_counts_then_confirms(workbench_data: sa.Engine) -> None:
    at = open_workbench()
    reference(at).input("zqaaaab")  # FB-000000 line 10, FB-000001 lines 1-9
    at.button(key=FILTER).click().run()
    at.button(key="w_recon_count").click().run()
    at.button(key="w_recon_bulk").click().run()
    assert not at.error
    assert [s.value for s in at.success] == ["10 suggestions confirmées."]
    confirmed = [d for d in decisions(workbench_data) if d[2] == "confirm" and d[5] == "carla"]
    assert len(confirmed) == 11  # with the one of the first test


SETTLE = "FormSubmitter:reconciliation_settle-"


def automatic_lines() -> AppTest:
    at = open_workbench()
    next(t for t in at.text_input if t.label == "Code fournisseur").input("UISUP")
    at.multiselect(key=at.multiselect[0].key).set_value(["auto_matched"])
    return at.button(key=FILTER).click().run()


def settled(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def test_write_off_the_difference_of_a_line(workbench_data: sa.Engine) -> None:
    at = automatic_lines()
    assert at.selectbox(key="w_recon_settle_line").value == "UISUP / UI-1 / 1"
    assert any("Écart restant: 6,00" in m.value for m in at.markdown)
    at.button(key=SETTLE + "Passer l'écart en perte ou profit").click().run()
    assert [e.value for e in at.error] == ["Motif: is required"]
    at.text_input(key="w_recon_settle_reason").input("arrondi fournisseur")
    at.button(key=SETTLE + "Passer l'écart en perte ou profit").click().run()
    assert not at.error
    assert len(at.success) == 1 and at.success[0].value.startswith("Écart passé en perte ou profit pour BK-")
    assert settled(workbench_data, "SELECT amount, created_by, reverses_id FROM app.write_offs") == [
        (Decimal("6.00"), "carla", None)
    ]
    assert [i.value for i in at.info] == ["Plus aucun écart à solder."]


def test_turn_the_difference_into_a_regulation(workbench_data: sa.Engine) -> None:
    at = automatic_lines()
    at.selectbox(key="w_recon_settle_line").set_value("UISUP / UI-1 / 2").run()
    assert any("Écart restant: 30,00" in m.value for m in at.markdown)
    at.text_input(key="w_recon_settle_reason").input("nouveau tarif")
    at.button(key=SETTLE + "Transformer en régularisation").click().run()
    assert not at.error
    assert len(at.success) == 1 and at.success[0].value.startswith("Régularisation enregistrée sur BK-")
    rows = "SELECT unit_purchase_amount, unit_sale_amount, created_by FROM app.price_lines WHERE origin = 'regulation'"
    assert settled(workbench_data, rows) == [(Decimal("30.00"), Decimal("0.00"), "carla")]
