"""The Dashboards page through AppTest over a real Parquet archive: every view's chart, table and
downloads, the filters, an empty archive, and the right (a refusal is audited)."""

from __future__ import annotations

import csv
import io
import sys
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.runtime.memory_media_file_storage import _calculate_file_id
from streamlit.testing.v1 import AppTest

from backoffice.analytics.billing_status_mix import billing_status_mix
from backoffice.analytics.client_balance_ageing import client_balance_ageing
from backoffice.analytics.downloads import csv_bytes, excel_bytes
from backoffice.analytics.margin import margin_by_brand_destination_month
from backoffice.analytics.over_invoiced import over_invoiced_by_supplier
from backoffice.analytics.reader import Filters
from backoffice.analytics.supplier_invoice_ageing import supplier_invoice_ageing
from backoffice.analytics.unmatched_invoice_ageing import unmatched_invoice_ageing
from backoffice.config import get_settings
from backoffice.domain.permissions import Actor

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/ is not an installed package
from bench.dashboards import BRANDS, START, SUPPLIERS, synthetic_archive

APP = Path(__file__).resolve().parents[2] / "apps" / "streamlit"
PAGE = str(APP / "app_pages" / "dashboards.py")
DAYS = 20
LAST = START + timedelta(days=DAYS - 1)
ACCOUNTANT = Actor("carla", "accountant", frozenset({"search_dossiers", "view_accounting"}), locale="fr")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NAMES = [
    "billing_status_mix",
    "over_invoiced_by_supplier",
    "unmatched_invoice_ageing",
    "client_balance_ageing",
    "supplier_invoice_ageing",
    "margin",
]
VIEWS = [
    billing_status_mix,
    over_invoiced_by_supplier,
    unmatched_invoice_ageing,
    client_balance_ageing,
    supplier_invoice_ageing,
    margin_by_brand_destination_month,
]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    synthetic_archive(root, DAYS, 400)
    return root


@pytest.fixture
def page(db: sa.Engine, archive: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(APP))
    monkeypatch.setenv("BACKOFFICE_ARCHIVE_DIR", str(archive))
    get_settings.cache_clear()
    st.cache_data.clear()
    yield archive
    monkeypatch.undo()
    get_settings.cache_clear()
    st.cache_data.clear()


def open_page(actor: Actor) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["actor"] = actor
    at.session_state["locale"] = actor.locale
    return at.run()


def shown(at: AppTest, index: int) -> pl.DataFrame:
    """A table as the page shows it; dates come back from the front end as datetimes."""
    return pl.from_pandas(at.dataframe[index].value).with_columns(pl.col(pl.Datetime).cast(pl.Date))


def same(table: pl.DataFrame, expected: pl.DataFrame) -> bool:
    """The page's table holds the view's rows (decimals compared exactly, as text)."""
    as_text = [pl.col(c).cast(pl.String) for c in expected.columns]
    return table.select(as_text).rows() == expected.select(as_text).rows()


def test_every_view_is_drawn_with_its_table_and_downloads(page: Path) -> None:
    at = open_page(ACCOUNTANT)
    assert not at.exception and not at.error
    assert at.title[0].value == "Tableaux de bord"
    assert [s.value for s in at.subheader] == [
        "Mix des statuts de facturation dans le temps",
        "Montants surfacturés par fournisseur",
        "Ancienneté des factures non rapprochées",
        "Soldes clients dus",
        "Ancienneté des factures fournisseurs",
        "Marge par marque, destination et mois",
    ]
    assert at.date_input[0].value == (START, LAST), "by default, the archive's last days"
    whole = Filters(START, LAST)
    for index, view in enumerate(VIEWS):
        assert same(shown(at, index), view(page, whole)), view.__name__
    assert len(at.get("vega_lite_chart")) == len(VIEWS)
    downloads = at.get("download_button")
    assert [d.proto.label for d in downloads] == ["CSV", "Excel"] * len(VIEWS)
    # A download's address is the hash of its bytes, type and file name: each button carries
    # exactly the view's table as CSV and as Excel.
    for index, (name, view) in enumerate(zip(NAMES, VIEWS, strict=True)):
        frame, stem = view(page, whole), f"{name}_{START.isoformat()}_{LAST.isoformat()}"
        csv_id = _calculate_file_id(csv_bytes(frame), "text/csv", f"{stem}.csv")
        excel_id = _calculate_file_id(excel_bytes(frame, name), XLSX, f"{stem}.xlsx")
        assert downloads[2 * index].proto.url.endswith(f"/{csv_id}.csv"), name
        assert excel_id in downloads[2 * index + 1].proto.url, name


def check_views(at: AppTest, root: Path, filters: Filters) -> list[pl.DataFrame]:
    """Each view's table on the page equals the view computed for `filters`; an empty one is said so."""
    assert not at.exception and not at.error
    expected = [view(root, filters) for view in VIEWS]
    tables = [frame for frame in expected if not frame.is_empty()]
    assert len(at.dataframe) == len(tables)
    for index, frame in enumerate(tables):
        assert same(shown(at, index), frame)
    assert len([i for i in at.info if i.value == "Rien pour ces filtres."]) == len(expected) - len(tables)
    return expected


def test_filters_narrow_every_view(page: Path) -> None:
    at = open_page(ACCOUNTANT)
    first_week = (START, START + timedelta(days=6))
    at.date_input[0].set_value(first_week).run()
    at.selectbox[0].select(BRANDS[1]).run()
    mix, over, _unmatched, balances, _invoices, margin = check_views(at, page, Filters(*first_week, brand=BRANDS[1]))
    assert not any(frame.is_empty() for frame in (mix, over, balances, margin))
    assert set(mix["date"]) == {START + timedelta(days=n) for n in range(7)}
    assert mix["rows"].sum() < billing_status_mix(page, Filters(*first_week))["rows"].sum()
    assert balances["as_of"].unique().to_list() == [first_week[1]]
    assert margin["brand"].unique().to_list() == [BRANDS[1]]

    at.selectbox[1].select(SUPPLIERS[2]).run()
    mix, over, unmatched, *_ = check_views(at, page, Filters(*first_week, brand=BRANDS[1], supplier=SUPPLIERS[2]))
    assert not mix.is_empty() and not unmatched.is_empty()
    assert set(unmatched["supplier_code"]) == {SUPPLIERS[2]}


def test_the_downloaded_files_hold_the_table(page: Path) -> None:
    frame = over_invoiced_by_supplier(page, Filters(START, LAST))
    rows = list(csv.DictReader(io.StringIO(csv_bytes(frame).decode("utf-8"))))
    assert len(rows) == frame.height > 0
    assert rows[0]["as_of"] == LAST.isoformat()
    assert [Decimal(r["over_invoiced_amount"]) for r in rows] == frame["over_invoiced_amount"].to_list()
    with zipfile.ZipFile(io.BytesIO(excel_bytes(frame, "over_invoiced_by_supplier"))) as book:
        assert 'name="over_invoiced_by_supplier"' in book.read("xl/workbook.xml").decode()
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        strings = book.read("xl/sharedStrings.xml").decode()
    assert sheet.count("<row ") == frame.height + 1
    assert all(column in strings for column in frame.columns)
    assert f"<v>{frame['over_invoiced_amount'][0]}</v>" in sheet


def test_an_empty_archive_says_so(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKOFFICE_ARCHIVE_DIR", str(tmp_path / "nothing yet"))
    get_settings.cache_clear()
    at = open_page(ACCOUNTANT)
    assert not at.exception and not at.error
    assert at.info[0].value.startswith("L'archive ne contient encore aucun instantané")
    assert not at.dataframe


def test_an_agent_without_the_right_is_refused_and_audited(page: Path, db: sa.Engine) -> None:
    at = open_page(Actor("alice", "agent", frozenset({"search_dossiers"}), locale="en"))
    assert not at.exception
    assert "needs the 'view_accounting' permission" in at.error[0].value
    assert not at.dataframe
    with db.connect() as conn:
        refused = conn.execute(
            sa.text("SELECT actor, action, outcome FROM audit.events WHERE action = 'view_dashboards'")
        ).all()
    assert [tuple(r) for r in refused] == [("alice", "view_dashboards", "refused")]
