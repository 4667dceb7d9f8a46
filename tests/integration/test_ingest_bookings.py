"""Booking and supplier ingestion against a real PostgreSQL, from hand-written landing files.

tests/fixtures/landing holds four days: 11-25 two new dossiers; 11-26 version 2 of dossier 1
(hotel cancelled, insurance added) and version 3 of dossier 2; 11-27 a late export with
version 1 of dossier 1 again (already loaded), version 2 of dossier 2 (older than the applied
version 3) and a new dossier 3; 11-28 contract breaches beside good lines.
"""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.ingest import booking_merge, load_bookings_day, load_suppliers

LANDING = Path(__file__).parents[1] / "fixtures" / "landing"
DAY1, DAY2, DAY3, DAY4 = (date(2026, 11, d) for d in (25, 26, 27, 28))

# Every table ingestion writes, with the columns that do not depend on the wall clock.
TABLES = {
    "raw.booking_snapshots": "dossier_number, version, updated_at, payload, file, line",
    "raw.landing_files": "source, path, sha256, partition_date, bytes, rows_loaded, rows_rejected",
    "raw.rejections": "source, file, line, record_key, reason",
    "app.dossiers": "*",
    "app.travellers": "*",
    "app.services": "*",
    "app.price_lines": "*",
    "app.payment_schedule": "*",
}


def dump(engine: Engine, tables: dict[str, str] = TABLES) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {
            table: [tuple(row) for row in conn.execute(sa.text(f"SELECT {cols} FROM {table} ORDER BY 1, 2, 3"))]
            for table, cols in tables.items()
        }


def rows(engine: Engine, sql: str, **params: object) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def test_a_day_loads_into_raw_and_app_tables(db: Engine) -> None:
    result = load_bookings_day(DAY1, LANDING, db)

    assert (result.files, result.rows_loaded, result.rows_unchanged, result.rows_rejected) == (1, 2, 0, 0)
    assert result.bytes == (LANDING / "bookings/2026-11-25/platform.jsonl").stat().st_size
    dossier = rows(db, "SELECT * FROM app.dossiers WHERE dossier_number = 'BK-2026-000001'")[0]
    assert dossier.platform_version == 1
    assert (dossier.status, dossier.channel, dossier.currency, dossier.destination_country) == (
        "confirmed",
        "web",
        "EUR",
        "MA",
    )
    assert (dossier.departure_date, dossier.return_date) == (date(2027, 2, 10), date(2027, 2, 17))
    assert dossier.client_last_name == "Martin" and dossier.client_address["city"] == "Lyon"
    assert dossier.updated_at.isoformat() == "2026-11-25T08:00:00+00:00"
    assert dossier.sale_total == Decimal("1450.02")  # 450 + 350 + 7 x 92.86
    lines = rows(
        db,
        "SELECT line_id, service_id, origin, booking_version, quantity, unit_sale_amount, sale_currency,"
        " purchase_total, purchase_currency, vat_rate, supplier_code FROM app.price_lines"
        " WHERE dossier_number = 'BK-2026-000001' ORDER BY line_id",
    )
    assert [tuple(line) for line in lines] == [
        ("L1", "S1", "booking", 1, 1, Decimal("450.00"), "EUR", Decimal("400.00"), "EUR", Decimal("0"), "SUP0001"),
        ("L2", "S1", "booking", 1, 1, Decimal("350.00"), "EUR", Decimal("310.00"), "EUR", Decimal("0"), "SUP0001"),
        # the purchase amount was a JSON number (80.5): loaded exactly
        ("L3", "S2", "booking", 1, 7, Decimal("92.86"), "EUR", Decimal("563.50"), "MAD", Decimal("0.1"), "SUP0004"),
    ]
    assert [r.traveller_id for r in rows(db, "SELECT * FROM app.travellers ORDER BY 1, 2")] == ["T1", "T2", "T1"]
    schedule = rows(db, "SELECT seq, due_date, amount, kind FROM app.payment_schedule ORDER BY 1, 2")
    assert [tuple(s) for s in schedule] == [
        (1, date(2026, 11, 25), Decimal("300.00"), "deposit"),
        (2, date(2027, 1, 10), Decimal("1150.00"), "balance"),
    ]
    snapshots = rows(db, "SELECT dossier_number, version, file, line, payload FROM raw.booking_snapshots ORDER BY 1")
    assert [(s.dossier_number, s.file, s.line) for s in snapshots] == [
        ("BK-2026-000001", "bookings/2026-11-25/platform.jsonl", 1),
        ("BK-2026-000002", "bookings/2026-11-25/platform.jsonl", 2),
    ]
    assert snapshots[0].payload["services"][1]["lines"][0]["unit_purchase_amount"] == 80.5  # as delivered
    assert rows(db, "SELECT count(*) FROM raw.rejections")[0][0] == 0


def test_running_a_day_twice_changes_nothing(db: Engine, tmp_path: Path) -> None:
    load_bookings_day(DAY1, LANDING, db)
    load_bookings_day(DAY2, LANDING, db)
    before = dump(db)

    again = load_bookings_day(DAY2, LANDING, db)

    assert dump(db) == before
    assert (again.files_skipped, again.rows_loaded, again.rows_rejected) == (1, 0, 0)

    # The same records under another file name: recognised by their natural keys.
    landing = tmp_path / "landing"
    shutil.copytree(LANDING / "bookings/2026-11-26", landing / "bookings/2026-11-26")
    (landing / "bookings/2026-11-26/platform.jsonl").rename(landing / "bookings/2026-11-26/resent.jsonl")
    resent = load_bookings_day(DAY2, landing, db)

    assert (resent.files_skipped, resent.rows_loaded, resent.rows_unchanged, resent.rows_rejected) == (0, 0, 2, 0)
    without_ledger = {t: c for t, c in TABLES.items() if t != "raw.landing_files"}
    assert dump(db, without_ledger) == {t: before[t] for t in without_ledger}


def test_a_higher_version_replaces_the_state_and_adds_its_lines(db: Engine) -> None:
    load_bookings_day(DAY1, LANDING, db)
    old_lines = rows(db, "SELECT * FROM app.price_lines WHERE dossier_number = 'BK-2026-000001' ORDER BY id")

    result = load_bookings_day(DAY2, LANDING, db)

    assert (result.rows_loaded, result.rows_rejected) == (2, 0)
    dossier = rows(db, "SELECT * FROM app.dossiers WHERE dossier_number = 'BK-2026-000001'")[0]
    assert (dossier.platform_version, dossier.version) == (2, 2)  # the row version moves: agents' forms go stale
    assert dossier.sale_total == Decimal("870.00")  # 450 + 350 + 2 x 35; the cancelled hotel no longer counts
    services = rows(db, "SELECT service_id, status FROM app.services WHERE dossier_number = 'BK-2026-000001'")
    assert sorted(map(tuple, services)) == [("S1", "confirmed"), ("S2", "cancelled"), ("S3", "confirmed")]
    travellers = rows(db, "SELECT traveller_id FROM app.travellers WHERE dossier_number = 'BK-2026-000001'")
    assert [t.traveller_id for t in travellers] == ["T1"]
    lines = rows(db, "SELECT * FROM app.price_lines WHERE dossier_number = 'BK-2026-000001' ORDER BY id")
    assert lines[:3] == old_lines  # immutable: the old version's lines stay as they were
    assert [(x.booking_version, x.line_id) for x in lines[3:]] == [(2, "L1"), (2, "L2"), (2, "L3"), (2, "L4")]
    assert rows(db, "SELECT status, platform_version FROM app.dossiers WHERE dossier_number = 'BK-2026-000002'")[0] == (
        "confirmed",
        3,
    )


def test_a_lower_version_arriving_later_is_ignored_and_reported(db: Engine) -> None:
    for day in (DAY1, DAY2):
        load_bookings_day(day, LANDING, db)
    before = dump(db, {"app.dossiers": "*", "app.price_lines": "*"})

    result = load_bookings_day(DAY3, LANDING, db)

    assert (result.rows_loaded, result.rows_unchanged, result.rows_rejected) == (1, 1, 1)
    after = dump(db, {"app.dossiers": "*", "app.price_lines": "*"})
    assert [d for d in after["app.dossiers"] if d[0] != "BK-2026-000003"] == before["app.dossiers"]
    assert [p for p in after["app.price_lines"] if p[1] != "BK-2026-000003"] == before["app.price_lines"]
    rejections = rows(db, "SELECT source, file, line, record_key, reason FROM raw.rejections")
    assert [tuple(r) for r in rejections] == [
        (
            "bookings",
            "bookings/2026-11-27/late_export.jsonl",
            2,
            "BK-2026-000002",
            "version 2 is older than version 3 already applied",
        )
    ]
    assert rows(db, "SELECT rows_loaded, rows_rejected FROM raw.landing_files WHERE partition_date = :d", d=DAY3)[
        0
    ] == (1, 1)


@pytest.fixture
def breaches(db: Engine) -> tuple[dict[tuple[str, int | None], str], object]:
    result = load_bookings_day(DAY4, LANDING, db)
    found = rows(db, "SELECT file, line, record_key, reason FROM raw.rejections")
    return {(r.file.rsplit("/", 1)[1], r.line): r.reason for r in found}, result


@pytest.mark.parametrize(
    ("file", "line", "expected"),
    [
        ("mixed.jsonl", 2, "not valid JSON"),
        ("mixed.jsonl", 3, "dossier_number: is required"),
        ("mixed.jsonl", 4, "departure_date: '2027-02-30' is not a date"),
        ("mixed.jsonl", 5, "currency: 'EUX' is not an ISO 4217 currency code"),
        ("mixed.jsonl", 6, "services[0].lines[0].quantity: -1 is below the minimum of 1"),
        ("mixed.jsonl", 7, "services[0].lines[0].unit_sale_amount: '450.125' has more than 2 decimals"),
        ("mixed.jsonl", 8, "return_date: 2027-02-01 is before departure_date 2027-02-10"),
        ("binary.jsonl", None, "binary file"),
        ("latin1.jsonl", None, "not UTF-8 text"),
    ],
)
def test_each_breach_is_rejected_with_file_line_and_reason(
    breaches: tuple[dict[tuple[str, int | None], str], object], file: str, line: int | None, expected: str
) -> None:
    reasons, _ = breaches
    assert expected in reasons[(file, line)]


def test_good_lines_load_beside_breaches_and_bom_crlf_files_are_accepted(
    db: Engine, breaches: tuple[dict[tuple[str, int | None], str], object]
) -> None:
    reasons, result = breaches
    assert len(reasons) == 9
    loaded = [r.dossier_number for r in rows(db, "SELECT dossier_number FROM app.dossiers ORDER BY 1")]
    assert loaded == ["BK-2026-000004", "BK-2026-000011", "BK-2026-000012"]  # 12 came as BOM + CRLF
    assert (result.files, result.rows_loaded, result.rows_rejected) == (4, 3, 9)
    ledger = rows(db, "SELECT path, rows_loaded, rows_rejected FROM raw.landing_files ORDER BY path")
    assert [(p.rsplit("/", 1)[1], n, r) for p, n, r in ledger] == [
        ("binary.jsonl", 0, 1),
        ("latin1.jsonl", 0, 1),
        ("mixed.jsonl", 2, 7),
        ("windows.jsonl", 1, 0),
    ]


def test_a_failure_during_the_merge_leaves_the_day_untouched(db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    load_bookings_day(DAY1, LANDING, db)
    before = dump(db)
    monkeypatch.setattr(booking_merge, "MERGE", (*booking_merge.MERGE, "SELECT 1 / 0"))

    with pytest.raises(psycopg.errors.DivisionByZero):
        load_bookings_day(DAY2, LANDING, db)

    assert dump(db) == before


def test_suppliers_load_and_bad_rows_are_reported(db: Engine) -> None:
    result = load_suppliers(DAY1, LANDING, db)

    assert (result.rows_loaded, result.rows_rejected) == (3, 1)
    suppliers = rows(db, "SELECT supplier_code, name, vat_number, payment_terms_days FROM app.suppliers ORDER BY 1")
    assert [tuple(s) for s in suppliers] == [
        ("SUP0001", "Air Horizon", "FR40303265045", 30),
        ("SUP0004", "Hôtels Riviera SAS", "FR83404833048", 45),
        ("SUP0009", "Assur'Voyage, SA", None, 15),
    ]
    assert rows(db, "SELECT count(*) FROM raw.suppliers")[0][0] == 3
    rejection = rows(db, "SELECT file, line, record_key, reason FROM raw.rejections")[0]
    assert (rejection.file, rejection.line, rejection.record_key) == ("reference/suppliers.csv", 5, "SUP0010")
    assert "country: 'XX'" in rejection.reason and "payment_terms_days: 'thirty'" in rejection.reason
    assert load_suppliers(DAY2, LANDING, db).files_skipped == 1
