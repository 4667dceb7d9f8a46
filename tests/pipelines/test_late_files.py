"""A file landing in a past day's folder after the day was loaded triggers one re-run of that day."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import dagster as dg
from sqlalchemy.engine import Engine

from backoffice.ingest import load_bookings_day
from backoffice.ingest.late_files import late_days
from pipelines.resources import Database, LandingZone
from pipelines.sensors import late_landing_files

FIXTURES = Path(__file__).parents[1] / "fixtures" / "landing"
DAY1, DAY2 = date(2026, 11, 25), date(2026, 11, 26)
TODAY = date(2026, 11, 30)


def _landing(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    for day in (DAY1, DAY2):
        shutil.copytree(FIXTURES / "bookings" / day.isoformat(), landing / "bookings" / day.isoformat())
    return landing


def test_a_late_file_marks_its_day_until_it_is_loaded(db: Engine, tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    load_bookings_day(DAY1, landing, db)
    load_bookings_day(DAY2, landing, db)
    assert late_days(db, landing, TODAY) == []

    late = landing / "bookings" / DAY1.isoformat() / "late.jsonl"
    shutil.copy(FIXTURES / "bookings" / "2026-11-27" / "late_export.jsonl", late)
    pending = late_days(db, landing, TODAY)
    assert [(p.day, p.files) for p in pending] == [(DAY1, ("bookings/2026-11-25/late.jsonl",))]

    load_bookings_day(DAY1, landing, db)
    assert late_days(db, landing, TODAY) == []


def test_days_outside_the_window_or_never_loaded_are_left_to_the_schedule(db: Engine, tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    load_bookings_day(DAY1, landing, db)
    shutil.copy(FIXTURES / "bookings" / "2026-11-27" / "late_export.jsonl", landing / "bookings/2026-11-25/x.jsonl")
    assert late_days(db, landing, DAY1) == []  # not a past day yet
    assert late_days(db, landing, date(2027, 6, 1)) == []  # beyond the lookback
    assert [p.day for p in late_days(db, landing, TODAY)] == [DAY1]  # DAY2 never loaded: not late


def test_the_sensor_requests_one_run_per_late_file_set(db: Engine, database_url: str, tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    load_bookings_day(DAY1, landing, db)
    shutil.copy(FIXTURES / "bookings" / "2026-11-27" / "late_export.jsonl", landing / "bookings/2026-11-25/x.jsonl")
    context = dg.build_sensor_context(
        resources={"database": Database(url=database_url), "landing": LandingZone(path=str(landing))}
    )
    requests = list(late_landing_files(context))
    assert [r.partition_key for r in requests] == ["2026-11-25"]
    again = list(late_landing_files(context))
    assert [r.run_key for r in again] == [r.run_key for r in requests]  # same files: same key, Dagster dedups
