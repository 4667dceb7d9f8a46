"""The Accounting exports page through AppTest, on the real database: the history of exported days,
the files of a day regenerated for download, a run of the next day and the year FEC for holders of
`export`, and nothing but a refusal for someone without `view_accounting`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest
from test_app import log_in

from backoffice.config import get_settings
from backoffice.domain.permissions import Actor
from backoffice.export.delivery import LocalDirectory
from backoffice.services.exports import SYSTEM_EXPORTER, export_day
from backoffice.services.unit_of_work import UnitOfWork

APP = Path(__file__).resolve().parents[2] / "apps" / "streamlit"
PAGE = str(APP / "app_pages" / "exports.py")
ACCOUNTANT = Actor("carla", "accountant", frozenset({"view_accounting", "export"}), locale="fr")
VIEWER = Actor("vera", "auditor", frozenset({"view_accounting"}), locale="en")
AGENT = Actor("alice", "agent", frozenset({"search_dossiers"}), locale="en")


@pytest.fixture
def exported(db: sa.Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The 14th exported (three entries), one more entry validated on the 15th; deliveries go to tmp_path."""
    f.build_accounting_entries_mart(database_url)
    f.journal_entry(db, "BQ", 1, datetime(2026, 3, 14, 8, 0, tzinfo=UTC), "250.00", debit_account="512000")
    f.journal_entry(db, "AC", 1, datetime(2026, 3, 14, 9, 0, tzinfo=UTC), "1234.56")
    f.journal_entry(db, "AC", 2, datetime(2026, 3, 14, 10, 0, tzinfo=UTC), "80.10")
    f.journal_entry(db, "AC", 3, datetime(2026, 3, 15, 10, 0, tzinfo=UTC), "42.00")
    monkeypatch.syspath_prepend(str(APP))
    monkeypatch.setenv("BACKOFFICE_EXPORT_DELIVERY", "directory")
    monkeypatch.setenv("BACKOFFICE_EXPORT_DIR", str(tmp_path))
    monkeypatch.delenv("BACKOFFICE_EXPORT_CSV_LAYOUT", raising=False)
    get_settings.cache_clear()
    with UnitOfWork(db) as uow:
        export_day(uow, SYSTEM_EXPORTER, date(2026, 3, 14), LocalDirectory(tmp_path))
    st.cache_data.clear()
    yield tmp_path
    monkeypatch.undo()
    get_settings.cache_clear()


def open_page(actor: Actor) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["actor"] = actor
    at.session_state["locale"] = actor.locale
    return at.run()


def test_history_and_the_files_of_a_day(exported: Path) -> None:
    at = open_page(ACCOUNTANT)
    assert not at.exception and not at.error
    assert at.title[0].value == "Exports comptables"
    history = at.dataframe[0].value
    assert list(history["Export"]) == ["EXP-20260314"]
    assert list(history["Écritures"]) == [3] and list(history["Lignes"]) == [6]
    assert history["AC"][0] == "2 écritures · débit 1\u202f314,66\xa0€ · crédit 1\u202f314,66\xa0€"
    assert list(history["Exporté par"]) == ["system"]

    at = at.button(key="w_exports_prepare").click().run()
    assert not at.exception and not at.error
    delivered = exported / "2026-03-14"
    names = sorted(p.name for p in delivered.iterdir())
    assert sorted(b.label for b in at.download_button) == names
    prepared = at.session_state["exports_prepared"]["files"]
    assert {name: data for name, data in prepared.items()} == {n: (delivered / n).read_bytes() for n in names}


def test_running_the_next_day_and_the_year_fec(exported: Path, db: sa.Engine) -> None:
    at = open_page(ACCOUNTANT)
    at.date_input(key="w_exports_run_day").set_value(date(2026, 3, 15))
    at = at.button(key="FormSubmitter:exports_run-Lancer l'export").click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == [
        f"Export EXP-20260315 écrit dans {exported / '2026-03-15'} : 1 écritures, 2 lignes."
    ]
    manifest = json.loads((exported / "2026-03-15" / "manifest.json").read_text())
    assert manifest["entries"] == 1 and list(at.dataframe[0].value["Export"]) == ["EXP-20260315", "EXP-20260314"]

    at.number_input(key="w_exports_year").set_value(2026)
    at = at.button(key="FormSubmitter:exports_year-Produire le FEC de l'exercice").click().run()
    assert not at.exception and not at.error
    assert (
        at.caption[-1].value
        == "000000000FEC20261231.txt.zip : 8 lignes, débit 1\u202f606,66\xa0€, crédit 1\u202f606,66\xa0€."
    )
    assert [b.label for b in at.download_button] == ["Télécharger le FEC de l'exercice"]
    with db.connect() as conn:
        done = conn.execute(sa.text("SELECT actor, action FROM audit.events WHERE outcome = 'done' ORDER BY id")).all()
    assert [tuple(r) for r in done][-2:] == [("carla", "accounting_export"), ("carla", "fiscal_year_fec")]


def test_a_viewer_sees_the_history_without_the_forms(exported: Path) -> None:
    at = open_page(VIEWER)
    assert not at.exception and not at.error
    assert at.title[0].value == "Accounting exports"
    assert list(at.dataframe[0].value["Export"]) == ["EXP-20260314"]
    assert not at.get("form") and not at.number_input


def test_without_view_accounting_the_page_refuses_and_the_refusal_is_audited(exported: Path, db: sa.Engine) -> None:
    at = open_page(AGENT)
    assert not at.exception
    assert [e.value for e in at.error] == ["alice is not allowed to do this (needs the 'view_accounting' permission)"]
    assert not at.dataframe
    with db.connect() as conn:
        refused = conn.execute(sa.text("SELECT actor, action FROM audit.events WHERE outcome = 'refused'")).all()
    assert [tuple(r) for r in refused] == [("alice", "list_accounting_exports")]


def test_an_accountant_reaches_the_page_from_the_router(exported: Path, db: sa.Engine) -> None:
    f.user(db, "carla", "accountant", f.PASSWORD, locale="en")
    at = log_in("carla").switch_page("app_pages/exports.py").run()
    assert not at.exception and not at.error
    assert at.title[0].value == "Accounting exports"
