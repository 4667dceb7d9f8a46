"""The reconciliation workbench in headless Chromium: an accountant logs in, opens the workbench,
filters on a reference, confirms the suggestion, and sees the line leave the open ones.

Data: bench.reconciliation.load_lines at its smallest (5 suggested lines of HOTBENCH, line i of
FB-000000 naming the traveller of BK-2098-00000i+1, and 5 unmatched ones), matched by dbt.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

# The server and browser fixtures of the first browser test (imported, so pytest uses them here).
from test_browser import CHROMIUM, app_url, page  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.reconciliation import load_lines

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def workbench_lines(engine: sa.Engine, database_url: str) -> Iterator[sa.Engine]:
    with engine.begin() as conn:
        tables = conn.execute(
            sa.text(
                """SELECT schemaname || '.' || tablename FROM pg_tables
                   WHERE schemaname IN ('raw', 'app', 'audit', 'intermediate', 'marts')
                     AND tablename NOT IN ('roles', 'permissions', 'role_permissions')"""
            )
        ).scalars()
        conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    load_lines(engine, database_url, open_lines=5, suggested=5, billing=True)
    f.user(engine, "carla", "accountant", f.PASSWORD, locale="fr")
    yield engine


def test_filter_and_confirm_a_suggestion_in_the_workbench(
    workbench_lines: sa.Engine,
    app_url: str,  # noqa: F811
    page: Page,  # noqa: F811
) -> None:
    page.goto(app_url)
    page.get_by_label("Identifiant").fill("carla")
    page.get_by_label("Mot de passe").fill(f.PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.get_by_role("link", name="Rapprochement").click()
    expect(page.get_by_role("heading", name="Rapprochement")).to_be_visible(timeout=15000)
    page.locator("[data-testid=stDataFrame]").first.wait_for()

    page.get_by_label("Référence").fill("zqaaaaac")  # the traveller of BK-2098-000002: FB-000000 line 2
    page.get_by_role("button", name="Filtrer").click()
    # The grid (a canvas, with hidden cells for screen readers) holds the filtered line only; the
    # decision form offers it: confirm (the first action) its suggestion.
    lines = page.get_by_role("gridcell", include_hidden=True).filter(has_text="HOTBENCH / FB-")
    expect(lines).to_have_count(1, timeout=15000)
    expect(lines).to_have_text("HOTBENCH / FB-000000 / 2")
    page.get_by_role("button", name="Enregistrer la décision").click()

    expect(page.get_by_text("Décision enregistrée pour HOTBENCH / FB-000000 / 2.")).to_be_visible(timeout=15000)
    # Confirmed, the line is no longer open: the filtered list is empty.
    expect(page.get_by_text("Aucune ligne ne correspond à ces filtres.")).to_be_visible()
    with workbench_lines.connect() as conn:
        decided = conn.execute(
            sa.text(
                """SELECT invoice_number, line_number, decision, dossier_number, decided_by
                   FROM app.reconciliation_decisions"""
            )
        ).all()
    assert [tuple(r) for r in decided] == [("FB-000000", 2, "confirm", "BK-2098-000002", "carla")]
