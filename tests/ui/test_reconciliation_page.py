"""The reconciliation workbench page, driven through AppTest against the real database and marts.

Data as in tests/integration/test_reconciliation.py (bench.reconciliation.load_lines, small):
20 suggested lines (HOTBENCH FB-000000 and FB-000001) and 20 unmatched ones (FB-000002, FB-000003).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
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
    load_lines(engine, database_url, open_lines=20, suggested=20, billing=False)
    f.user(engine, "carla", "accountant", f.PASSWORD, locale="fr")
    st.cache_data.clear()
    yield engine
    st.cache_data.clear()


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
