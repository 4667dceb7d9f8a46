"""Rows written once: the booking load COPYs most snapshots straight into raw.* and app.*, and
sends the rest (dossiers already stored, or delivered more than once in the day) through the stage
tables and the set-based merge. Both paths must write the same rows; the quick first pass that
chooses between them must read the dossier number JSON reads."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import factories
import orjson
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from backoffice.domain.errors import InvalidInput
from backoffice.domain.money import parse_amount
from backoffice.generator import generate
from backoffice.ingest import booking_rows, load_bookings_day, load_suppliers
from backoffice.ingest.booking_contract import _Checker
from backoffice.ingest.booking_rows import dossier_number_of
from backoffice.ingest.booking_sort import DaySort

LANDING = Path(__file__).parents[1] / "fixtures" / "landing"
DAY = date(2026, 3, 2)
# Every column a load writes except the price lines' ids, which follow the order rows are written in.
TABLES = {
    "raw.booking_snapshots": "dossier_number, version, updated_at, payload, file, line",
    "raw.rejections": "source, file, line, record_key, reason",
    "app.dossiers": "*",
    "app.travellers": "*",
    "app.services": "*",
    "app.payment_schedule": "*",
    "app.price_lines": "dossier_number, line_id, booking_version, service_id, origin, label, quantity, "
    "unit_sale_amount, sale_currency, unit_purchase_amount, purchase_currency, vat_rate, sale_total, "
    "purchase_total, supplier_code, source_type, source_id, created_at, created_by",
}


def _dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {
            t: [tuple(r) for r in conn.execute(sa.text(f"SELECT {c} FROM {t} ORDER BY 1, 2, 3"))]
            for t, c in TABLES.items()
        }


def _watch_paths(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many dossier rows each path received (the sorter's own answer, counted on the way)."""
    seen = {"direct": 0, "merged": 0}
    place = DaySort.place

    def counting(self: DaySort, snaps: list[Any]) -> Any:
        direct, staged = place(self, snaps)
        seen["direct"] += len(direct["app.dossiers"])
        seen["merged"] += len(staged["app.dossiers"])
        return direct, staged

    monkeypatch.setattr(DaySort, "place", counting)
    return seen


def _cancel_first_service(line: bytes) -> bytes:
    """One dossier in three, leaving the generator's deliberately broken lines as they are."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line
    if record.get("services") and sum(line) % 3 == 0:
        record["services"][0]["status"] = "cancelled"
    return orjson.dumps(record)


def test_the_direct_path_writes_what_the_merge_writes(
    db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generated day (cancelled services, several currencies and schedules) loaded directly, then
    with every dossier counted twice so that all of it goes through the merge: the same rows, sale
    totals included (the direct path sums them in Python, the merge in SQL)."""
    landing = tmp_path / "landing"
    generate(landing, DAY, 1, 120, seed=7)
    for path in (landing / "bookings" / DAY.isoformat()).glob("*.jsonl"):  # a new day cancels nothing: do
        path.write_bytes(b"".join(_cancel_first_service(line) + b"\n" for line in path.read_bytes().splitlines()))
    load_suppliers(DAY, landing, db)
    paths = _watch_paths(monkeypatch)
    direct_result = vars(load_bookings_day(DAY, landing, db))
    direct = _dump(db)
    assert paths == {"direct": len(direct["app.dossiers"]), "merged": 0}
    with db.connect() as conn:
        cancelled = conn.execute(sa.text("SELECT count(*) FROM app.services WHERE status = 'cancelled'")).scalar()
        totals = conn.execute(sa.text("SELECT count(DISTINCT sale_total) FROM app.dossiers")).scalar()
    assert cancelled and totals and totals > 10  # the sale totals compared below are not all alike

    with db.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        conn.execute(sa.text("DELETE FROM raw.landing_files WHERE source = 'bookings'"))
    counts = booking_rows.dossier_counts
    monkeypatch.setattr(booking_rows, "dossier_counts", lambda files: {k: 2 for k in counts(files)})
    paths.update(direct=0, merged=0)
    merged_result = vars(load_bookings_day(DAY, landing, db))

    assert paths == {"direct": 0, "merged": len(direct["app.dossiers"])}
    assert _dump(db) == direct
    assert {**merged_result, "duration_s": 0} == {**direct_result, "duration_s": 0}


def _line(template: dict[str, Any], **changes: Any) -> str:
    return orjson.dumps({**template, **changes}).decode()


def test_dossiers_known_or_delivered_twice_go_through_the_merge(
    db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dossier already in app.dossiers (entered by hand, no snapshot) is updated, not COPYed again;
    a dossier whose version 2 comes before its version 1 in the day ends on version 2; one whose
    second line breaks the contract loads from its first line; a record sent twice loads once."""
    template = orjson.loads((LANDING / "bookings/2026-11-25/platform.jsonl").read_text().splitlines()[0])
    known = factories.dossier(db, dossier_number="BK-2026-900001")
    folder = tmp_path / "bookings" / DAY.isoformat()
    folder.mkdir(parents=True)
    later = {"version": 2, "updated_at": "2026-11-25T12:00:00+01:00", "destination": "Fès"}
    lines = [
        _line(template, dossier_number=known),
        _line(template, dossier_number="BK-2026-900002", **later),
        _line(template, dossier_number="BK-2026-900002"),
        _line(template, dossier_number="BK-2026-900003"),
        _line(template, dossier_number="BK-2026-900003", version=0),
        _line(template, dossier_number="BK-2026-900004"),
        _line(template, dossier_number="BK-2026-900004"),
        _line(template, dossier_number="BK-2026-900005"),
    ]
    (folder / "day.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    paths = _watch_paths(monkeypatch)

    result = load_bookings_day(DAY, tmp_path, db)

    assert (result.rows_loaded, result.rows_rejected, result.rows_unchanged) == (6, 1, 1)
    assert paths == {"direct": 1, "merged": 5}
    with db.connect() as conn:
        state = {
            number: tuple(rest)
            for number, *rest in conn.execute(
                sa.text("SELECT dossier_number, platform_version, version, destination FROM app.dossiers")
            )
        }
        rejected = conn.execute(sa.text("SELECT line, record_key, reason FROM raw.rejections")).all()
    assert state == {
        known: (1, 2, template["destination"]),  # its row's version bumped: a form opened on it is now stale
        "BK-2026-900002": (2, 1, "Fès"),
        "BK-2026-900003": (1, 1, template["destination"]),
        "BK-2026-900004": (1, 1, template["destination"]),
        "BK-2026-900005": (1, 1, template["destination"]),
    }
    assert rejected == [(5, "BK-2026-900003", "version: 0 is below the minimum of 1")]


@pytest.mark.parametrize(
    "line",
    [
        '{"dossier_number": "BK-1", "version": 1}',
        '{"dossier_number":"BK-1","version":1}',
        '{"dossier_number":  "BK-1"}',
        '{"dossier_number":"BK-1}',
        '{"dossier_number": "BK-1", "client": {"dossier_number": "BK-2"}}',
        '{"dossier_number": "BK-1", "dossier\\u005fnumber": "BK-3"}',
        '{"dossier_number": "BK-1", "dossier_number": "BK-4"}',
        '{"dossier_number": "BK-\\"5", "a": 1}',
        '{"dossier_number": "BK-6\\ud800", "a": 1}',
        '{"version": 1, "dossier_number": "BK-7"}',
        '{ "dossier_number" : "BK-8" }',
        '{"dossier_number": 9}',
        '{"dossier_number": "BK-10", "a": NaN}',
        '{"dossier_number": 13, "a": ',
        '["dossier_number", "BK-11"]',
        '{"dossier_number": "BK-12", "big": 123456789012345678901234567890}',
    ],
)
def test_the_first_pass_reads_the_dossier_number_json_reads(line: str) -> None:
    try:
        record = json.loads(line)
    except ValueError:
        expected = None
    else:
        number = record.get("dossier_number") if isinstance(record, dict) else None
        expected = number if isinstance(number, str) else None
    assert dossier_number_of(line.encode()) == expected


_NUMBERS = st.from_regex(r"-?[0-9]{1,14}(\.[0-9]{0,5})?", fullmatch=True) | st.text("0123456789.-+ ", max_size=16)


@settings(max_examples=1000, deadline=None)
@given(_NUMBERS)
def test_amounts_and_rates_kept_as_written_are_what_the_decimal_checks_return(value: str) -> None:
    """The checks keep an amount or rate already in canonical form as it is: it must be exactly what
    parse_amount (amounts) or the Decimal rule (rates: 0 <= rate < 1, at most 4 decimals) gives back."""
    try:
        amount = str(parse_amount(value, "a"))
    except InvalidInput:
        amount = None
    try:
        rate = Decimal(value.strip())
        ok = rate.is_finite() and 0 <= rate < 1 and rate == rate.quantize(Decimal("0.0001"))
        rate_text = str(rate) if ok else None
    except InvalidOperation:
        rate_text = None
    checker = _Checker()

    assert checker.amount({"a": value}, "a", "a") == amount
    assert checker.rate({"r": value}, "r", "r") == rate_text
