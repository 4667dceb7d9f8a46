"""Payment ingestion against a real PostgreSQL, from hand-written landing files.

tests/fixtures/ingest_landing/payments: 11-25 `provider.csv` (BOM + CRLF) holds three good
payments (one unattributed, one for a dossier we do not know) beside one breach per kind, a
duplicate and a conflicting re-send of PAY-1; three files are unreadable whole (header without
`currency`, Latin-1, binary). 11-26 re-sends PAY-1 as it was and PAY-2 changed, plus PAY-11.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.ingest import load_payments_day, payment_merge

LANDING = Path(__file__).parents[1] / "fixtures" / "ingest_landing"
DAY1, DAY2 = date(2026, 11, 25), date(2026, 11, 26)
FILE = "payments/2026-11-25/provider.csv"

TABLES = {
    "raw.payments": "payment_id, dossier_number, received_at, method, amount, currency, status, provider,"
    " provider_reference, payer_name, file, line",
    "app.payments": "payment_id, dossier_number, received_at, method, amount, currency, status, provider,"
    " provider_reference, payer_name, origin, created_by, created_at",
    "raw.landing_files": "source, path, sha256, partition_date, bytes, rows_loaded, rows_rejected",
    "raw.rejections": "source, file, line, record_key, reason",
}


def dump(engine: Engine, tables: dict[str, str] = TABLES) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {
            table: [tuple(row) for row in conn.execute(sa.text(f"SELECT {cols} FROM {table} ORDER BY 1, 2, 3"))]
            for table, cols in tables.items()
        }


def rejections(engine: Engine) -> dict[tuple[str, int | None], tuple[str | None, str]]:
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT file, line, record_key, reason FROM raw.rejections"))
        return {(r.file.rsplit("/", 1)[1], r.line): (r.record_key, r.reason) for r in found}


def test_good_rows_load_beside_bad_ones(db: Engine) -> None:
    result = load_payments_day(DAY1, LANDING, db)

    assert (result.files, result.rows_loaded, result.rows_unchanged, result.rows_rejected) == (4, 3, 1, 9)
    with db.connect() as conn:
        loaded = [
            tuple(r) for r in conn.execute(sa.text(f"SELECT {TABLES['raw.payments']} FROM raw.payments ORDER BY 1"))
        ]
    assert loaded == [
        ("PAY-1", "BK-2026-000001", datetime(2026, 11, 25, 9, tzinfo=UTC), "card", Decimal("300.00"), "EUR",
         "captured", "adyen", "1234567890123456", "Claire Martin", FILE, 2),
        # unattributed: the queue agents assign later; the quoted comma stays in the name
        ("PAY-2", None, datetime(2026, 11, 25, 10, 30, tzinfo=UTC), "transfer", Decimal("1150.00"), "EUR",
         "captured", "bank", "VIR20261125001", "MARTIN, CLAIRE", FILE, 3),
        # a dossier we do not know (yet) is kept; a refund is negative
        ("PAY-3", "BK-2099-999999", datetime(2026, 11, 25, 12, tzinfo=UTC), "card", Decimal("-45.50"), "GBP",
         "refunded", "stripe", "ch_abc", "Jack Hall", FILE, 4),
    ]  # fmt: skip
    app = dump(db)["app.payments"]
    assert [row[:10] for row in app] == [row[:10] for row in loaded]
    assert {(row[10], row[11]) for row in app} == {("ingestion", "platform")}


@pytest.mark.parametrize(
    ("file", "line", "key", "expected"),
    [
        ("provider.csv", 5, None, "payment_id: is required"),
        ("provider.csv", 6, "PAY-5", "received_at: '25/11/2026 12:00' is not an ISO 8601 timestamp"),
        ("provider.csv", 7, "PAY-6", "currency: 'EURO' is not an ISO 4217 currency code"),
        (
            "provider.csv",
            9,
            "PAY-1",
            f"payment PAY-1 was already received with different content (file {FILE}, line 2)",
        ),
        ("provider.csv", 10, "PAY-7", "amount: '12,50' is not a decimal amount"),
        ("provider.csv", 11, "PAY-8", "row: 7 fields where the header has 10"),
        ("missing_column.csv", 1, None, "header: missing column(s) currency"),
        ("latin1.csv", None, None, "not UTF-8 text"),
        ("binary.csv", None, None, "binary file"),
    ],
)
def test_each_breach_is_rejected_with_file_line_and_reason(
    db: Engine, file: str, line: int | None, key: str | None, expected: str
) -> None:
    load_payments_day(DAY1, LANDING, db)

    found = rejections(db)
    assert len(found) == 9
    assert found[(file, line)][0] == key
    assert expected in found[(file, line)][1]


def test_a_payment_id_loads_once_and_a_changed_resend_never_replaces_it(db: Engine) -> None:
    load_payments_day(DAY1, LANDING, db)
    before = dump(db)["app.payments"]

    result = load_payments_day(DAY2, LANDING, db)

    assert (result.rows_loaded, result.rows_unchanged, result.rows_rejected) == (1, 1, 1)
    after = dump(db)["app.payments"]
    assert [row for row in after if row[0] != "PAY-11"] == before and len(after) == 4
    key, reason = rejections(db)[("late.csv", 3)]
    assert (key, reason) == ("PAY-2", f"payment PAY-2 was already received with different content (file {FILE}, "
                                      "line 3): not replaced")  # fmt: skip


def test_loading_twice_changes_nothing(db: Engine, tmp_path: Path) -> None:
    for day in (DAY1, DAY2):
        load_payments_day(day, LANDING, db)
    before = dump(db)

    again = [load_payments_day(day, LANDING, db) for day in (DAY1, DAY2)]

    assert dump(db) == before
    assert [(r.files_skipped, r.rows_loaded, r.rows_rejected) for r in again] == [(4, 0, 0), (1, 0, 0)]

    # The same records under other file names: recognised by payment_id, nothing new loads.
    landing = tmp_path / "landing"
    shutil.copytree(LANDING / "payments/2026-11-26", landing / "payments/2026-11-26")
    (landing / "payments/2026-11-26/late.csv").rename(landing / "payments/2026-11-26/copy.csv")
    resent = load_payments_day(DAY2, landing, db)
    assert (resent.rows_loaded, resent.rows_unchanged, resent.rows_rejected) == (0, 2, 1)
    after = dump(db)
    assert after["raw.payments"] == before["raw.payments"] and after["app.payments"] == before["app.payments"]


def test_a_crash_before_commit_leaves_the_day_untouched(db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    before = dump(db)
    with monkeypatch.context() as patch:
        # after the COPY and the merge, before the commit
        patch.setattr(payment_merge, "MERGE", (*payment_merge.MERGE, "SELECT 1 / 0"))
        with pytest.raises(psycopg.errors.DivisionByZero):
            load_payments_day(DAY1, LANDING, db)

    assert dump(db) == before
    rerun = load_payments_day(DAY1, LANDING, db)
    assert (rerun.files_skipped, rerun.rows_loaded, rerun.rows_unchanged, rerun.rows_rejected) == (0, 3, 1, 9)
