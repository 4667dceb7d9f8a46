"""The archive asset on generated data run through ingestion, dbt and the export; every dashboard
view read back through DuckDB equals the same figure computed directly in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from factories import generated_days
from sqlalchemy.engine import Engine

from assets.archive import archive
from assets.export import accounting_export
from backoffice.analytics.archive import STATUS_COUNTS, TABLE_NAMES, partition_path, status_counts_path
from backoffice.analytics.billing_status_mix import billing_status_mix
from backoffice.analytics.client_balance_ageing import client_balance_ageing
from backoffice.analytics.margin import margin_by_brand_destination_month
from backoffice.analytics.over_invoiced import over_invoiced_by_supplier
from backoffice.analytics.reader import Filters, snapshot_dates
from backoffice.analytics.supplier_invoice_ageing import supplier_invoice_ageing
from backoffice.analytics.unmatched_invoice_ageing import unmatched_invoice_ageing
from backoffice.config import get_settings
from backoffice.dbt_runner import run_dbt
from backoffice.domain.clock import accounting_today
from pipelines.resources import Database

START = date(2026, 1, 5)
DAYS = 30
FIRST, SECOND = START + timedelta(days=DAYS - 2), START + timedelta(days=DAYS - 1)
MARTS = "+dossier_billing_status +supplier_invoice_line_matches +accounting_entries +dossier_margin"

BUCKET = """CASE WHEN {age} < 0 THEN 'not_due' WHEN {age} <= 30 THEN '0-30' WHEN {age} <= 60 THEN '31-60'
                 WHEN {age} <= 90 THEN '61-90' ELSE '>90' END"""


@pytest.fixture
def archive_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("BACKOFFICE_ARCHIVE_DIR", str(tmp_path / "archive"))
    monkeypatch.setenv("BACKOFFICE_EXPORT_DIR", str(tmp_path / "exports"))
    get_settings.cache_clear()
    yield tmp_path / "archive"
    get_settings.cache_clear()


def materialize(asset: Any, day: date, database_url: str) -> dict[str, Any]:
    result = dg.materialize([asset], partition_key=day.isoformat(), resources={"database": Database(url=database_url)})
    assert result.success
    [event] = result.get_asset_materialization_events()
    return {name: value.value for name, value in event.materialization.metadata.items()}


def rows(db: Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def frame_rows(frame: pl.DataFrame, columns: list[str]) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in frame.select(columns).iter_rows())


def test_the_archive_holds_the_marts_and_every_view_equals_postgres(
    db: Engine, database_url: str, archive_dir: Path, tmp_path: Path
) -> None:
    generated_days(db, tmp_path / "landing", START, DAYS, 6, seed=7, payments=True)
    # Ingestion posts entries validated when loaded: the journal and the export are archived on
    # that day, the accountant's (Paris) day of the load, read after it: a day taken when the module
    # was imported failed a run that crossed midnight in Paris.
    loaded_on = accounting_today()
    run_dbt(
        ["build", "--select", MARTS, "--resource-type", "seed", "--resource-type", "model"], database_url=database_url
    )
    export = materialize(accounting_export, loaded_on, database_url)

    first = materialize(archive, FIRST, database_url)
    second = materialize(archive, SECOND, database_url)
    today = materialize(archive, loaded_on, database_url)
    assert snapshot_dates(archive_dir, "supplier_billing_status") == [FIRST, SECOND, loaded_on]
    tables = first["tables"]
    assert set(tables) == {*TABLE_NAMES, STATUS_COUNTS}
    for name, counted in [
        ("dossier_billing_status", "SELECT count(*) FROM marts.dossier_billing_status"),
        ("supplier_billing_status", "SELECT count(*) FROM marts.supplier_billing_status"),
        ("supplier_invoice_line_matches", "SELECT count(*) FROM marts.supplier_invoice_line_matches"),
        ("dossier_margin", "SELECT count(*) FROM marts.dossier_margin"),
        ("client_balances", "SELECT count(*) FROM intermediate.int_client__balances"),
    ]:
        assert tables[name]["rows"] == rows(db, counted)[0][0] > 0, name
        assert pq.read_metadata(partition_path(archive_dir, name, FIRST)).num_rows == tables[name]["rows"]
        assert tables[name]["bytes"] == partition_path(archive_dir, name, FIRST).stat().st_size
    assert first["rows"] == sum(t["rows"] for t in tables.values())
    day_lines = """SELECT count(*) FROM marts.accounting_entries
                   WHERE (validated_at AT TIME ZONE 'Europe/Paris')::date = :day"""
    for day, archived in ((FIRST, first), (SECOND, second), (loaded_on, today)):
        assert archived["tables"]["accounting_entries"]["rows"] == rows(db, day_lines, day=day)[0][0], day
    assert today["tables"]["accounting_entries"]["rows"] > 0, "the loaded records are validated today"
    assert tables["export_entries"]["rows"] == second["tables"]["export_entries"]["rows"] == 0
    # The first export carries every entry validated by the end of its day.
    every_line = rows(db, "SELECT count(*) FROM marts.accounting_entries")[0][0]
    assert today["tables"]["export_entries"]["rows"] == export["lines"] == every_line > 0
    journal = pl.read_parquet(partition_path(archive_dir, "accounting_entries", loaded_on))
    assert journal["debit"].sum() == journal["credit"].sum() > 0
    exported = pl.read_parquet(partition_path(archive_dir, "export_entries", loaded_on))
    assert exported["exported_in"].unique().to_list() == [export["export_id"]]
    debit = sum((Decimal(t["debit"]) for t in export["totals"].values()), Decimal(0))
    assert exported["debit"].sum() == exported["credit"].sum() == debit

    # A re-run of a day rewrites the same bytes.
    files = [partition_path(archive_dir, name, loaded_on) for name in TABLE_NAMES]
    files.append(status_counts_path(archive_dir, loaded_on))
    before = [path.read_bytes() for path in files]
    materialize(archive, loaded_on, database_url)
    assert [path.read_bytes() for path in files] == before
    assert not list(archive_dir.rglob("*.tmp"))

    whole = Filters(START, SECOND)
    _client_ageing(db, archive_dir, whole)
    _supplier_ageing(db, archive_dir, whole)
    _billing_mix(db, archive_dir, whole)
    _over_invoiced(db, archive_dir, whole)
    _margin(db, archive_dir, whole)
    assert client_balance_ageing(archive_dir, Filters(START, START)).is_empty(), "no snapshot in that range"


def _client_ageing(db: Engine, root: Path, whole: Filters) -> None:
    sql = f"""SELECT {BUCKET.format(age="coalesce(CAST(:day AS date) - next_payment_due_date, -1)")} AS bucket,
                     b.currency, count(*), sum(client_balance_due)
              FROM marts.dossier_billing_status b JOIN app.dossiers d USING (dossier_number)
              WHERE client_balance_due > 0 AND (CAST(:brand AS text) IS NULL OR d.brand = :brand)
              GROUP BY 1, 2"""
    columns = ["bucket", "currency", "dossiers", "balance_due"]
    view = client_balance_ageing(root, whole)
    assert view["as_of"].unique().to_list() == [SECOND]
    assert frame_rows(view, columns) == sorted(rows(db, sql, day=SECOND, brand=None))
    assert len(view["bucket"].unique()) >= 2, "the data ages balances into several buckets"
    brand = rows(db, "SELECT min(brand) FROM app.dossiers")[0][0]
    filtered = client_balance_ageing(root, Filters(START, FIRST, brand=brand))
    assert filtered["as_of"].unique().to_list() == [FIRST]
    assert frame_rows(filtered, columns) == sorted(rows(db, sql, day=FIRST, brand=brand))
    assert filtered["balance_due"].sum() < view["balance_due"].sum()


def _supplier_ageing(db: Engine, root: Path, whole: Filters) -> None:
    signed = "CASE WHEN m.kind = 'credit_note' THEN -m.amount_incl_tax ELSE m.amount_incl_tax END"
    age = "greatest(CAST(:day AS date) - i.invoice_date, 0)"
    lines = """FROM marts.supplier_invoice_line_matches m
                JOIN app.supplier_invoices i USING (supplier_code, invoice_number)
                WHERE (CAST(:supplier AS text) IS NULL OR m.supplier_code = :supplier)"""
    sql = f"""SELECT {BUCKET.format(age=age)}, m.currency, count(DISTINCT (m.supplier_code, m.invoice_number)),
                     sum({signed}), sum(CASE WHEN m.state IN ('auto_matched', 'confirmed') THEN 0 ELSE {signed} END)
              {lines} GROUP BY 1, 2"""
    view = supplier_invoice_ageing(root, whole)
    assert frame_rows(view, ["bucket", "currency", "invoices", "amount", "open_amount"]) == sorted(
        rows(db, sql, day=SECOND, supplier=None)
    )
    supplier = rows(
        db, "SELECT supplier_code FROM marts.supplier_invoice_line_matches GROUP BY 1 ORDER BY count(*) DESC"
    )
    one = supplier_invoice_ageing(root, Filters(START, SECOND, supplier=supplier[0][0]))
    assert frame_rows(one, ["bucket", "currency", "invoices", "amount", "open_amount"]) == sorted(
        rows(db, sql, day=SECOND, supplier=supplier[0][0])
    )

    unmatched = f"""SELECT m.supplier_code, {BUCKET.format(age=age)}, m.currency, count(*), sum({signed})
                    {lines} AND m.state IN ('unmatched', 'suggested', 'rejected') GROUP BY 1, 2, 3"""
    view = unmatched_invoice_ageing(root, whole)
    expected = sorted(rows(db, unmatched, day=SECOND, supplier=None))
    assert expected, "the generated invoices leave some lines unmatched"
    assert frame_rows(view, ["supplier_code", "bucket", "currency", "lines", "amount"]) == expected


def _billing_mix(db: Engine, root: Path, whole: Filters) -> None:
    sql = """SELECT status, count(*) FROM marts.supplier_billing_status
             WHERE (CAST(:supplier AS text) IS NULL OR supplier_code = :supplier) GROUP BY 1"""
    view = billing_status_mix(root, whole)
    expected = rows(db, sql, supplier=None)
    total = sum(n for _, n in expected)
    for day in (FIRST, SECOND):  # the data did not change between the two snapshots
        assert frame_rows(view.filter(pl.col("date") == day), ["status", "rows"]) == sorted(expected)
    shares = dict(view.filter(pl.col("date") == SECOND).select("status", "share").iter_rows())
    assert shares == {s: (Decimal(n) / total).quantize(Decimal("0.0001")) for s, n in expected}
    supplier = rows(db, "SELECT min(supplier_code) FROM marts.supplier_billing_status")[0][0]
    one = billing_status_mix(root, Filters(SECOND, SECOND, supplier=supplier))
    assert frame_rows(one, ["status", "rows"]) == sorted(rows(db, sql, supplier=supplier))


def _over_invoiced(db: Engine, root: Path, whole: Filters) -> None:
    sql = """SELECT supplier_code, currency, count(*), sum(difference) FROM marts.supplier_billing_status
             WHERE status = 'over_invoiced' GROUP BY 1, 2"""
    view = over_invoiced_by_supplier(root, whole)
    expected = sorted(rows(db, sql))
    assert expected, "the generator over-invoices some dossiers"
    assert frame_rows(view, ["supplier_code", "currency", "dossiers", "over_invoiced_amount"]) == expected
    amounts = view["over_invoiced_amount"].to_list()
    assert amounts == sorted(amounts, reverse=True)


def _margin(db: Engine, root: Path, whole: Filters) -> None:
    sql = """SELECT d.brand, d.destination, date_trunc('month', d.departure_date)::date, m.currency, count(*),
                    sum(m.sale_total),
                    sum(CASE computed_from WHEN 'actual' THEN margin_actual ELSE margin_estimated END),
                    sum(CASE computed_from WHEN 'actual' THEN margin_vat_actual ELSE margin_vat_estimated END)
             FROM marts.dossier_margin m JOIN app.dossiers d USING (dossier_number)
             WHERE d.departure_date BETWEEN :start AND :end GROUP BY 1, 2, 3, 4"""
    columns = ["brand", "destination", "month", "currency", "dossiers", "sale_total", "margin", "margin_vat"]
    wide = Filters(START - timedelta(days=400), SECOND + timedelta(days=400))
    view = margin_by_brand_destination_month(root, wide)
    expected = sorted(rows(db, sql, start=wide.start, end=wide.end))
    assert expected
    assert frame_rows(view, columns) == expected
    narrow = margin_by_brand_destination_month(root, whole)
    assert frame_rows(narrow, columns) == sorted(rows(db, sql, start=whole.start, end=whole.end))
