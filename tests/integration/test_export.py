"""The daily accounting export at the service boundary, on a real PostgreSQL: entries posted in
marts.accounting_entries, files checked, recorded and delivered to a real folder."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import factories as f
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.domain.errors import PermissionDenied
from backoffice.domain.permissions import Actor
from backoffice.export.companions import sha256
from backoffice.export.delivery import LocalDirectory
from backoffice.export.fec import COLUMNS, FecFormat
from backoffice.export.fec_check import check_file
from backoffice.services.exports import SYSTEM_EXPORTER, ExportFaulty, export_day, fiscal_year_fec
from backoffice.services.unit_of_work import UnitOfWork

DAY = date(2026, 3, 14)
NAME = "000000000FEC20260314"
ACCOUNTANT = Actor("compta", "accountant", frozenset({"export"}))


@pytest.fixture
def entries(db: Engine, database_url: str) -> Engine:
    f.build_accounting_entries_mart(database_url)
    f.journal_entry(db, "BQ", 1, datetime(2026, 3, 14, 8, 0, tzinfo=UTC), "250.00", debit_account="512000")
    f.journal_entry(db, "AC", 1, datetime(2026, 3, 14, 9, 0, tzinfo=UTC), "1234.56", aux_account="AIR01")
    f.journal_entry(db, "AC", 2, datetime(2026, 3, 14, 10, 0, tzinfo=UTC), "80.10", label="Hôtel Łódź")
    # 23:30 in Paris is still the 14th; 00:30 on the 15th in Paris is still the 14th in UTC.
    f.journal_entry(db, "OD", 1, datetime(2026, 3, 14, 22, 30, tzinfo=UTC), "19.99", debit_account="706000")
    f.journal_entry(db, "AC", 3, datetime(2026, 3, 14, 23, 30, tzinfo=UTC), "42.00")
    return db


def run(engine: Engine, day: date, out: Path, actor: Actor = ACCOUNTANT):
    with UnitOfWork(engine) as uow:
        return export_day(uow, actor, day, LocalDirectory(out))


def fec_rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_bytes().decode("iso-8859-15").splitlines()]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_day_is_checked_recorded_and_delivered_with_its_companions(entries: Engine, tmp_path: Path) -> None:
    result = run(entries, DAY, tmp_path)
    folder = tmp_path / "2026-03-14"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{NAME}.txt", f"{NAME}.csv", f"{NAME}.parquet", "manifest.json"]
    )
    fec = folder / f"{NAME}.txt"
    assert check_file(fec, FecFormat()) == []
    rows = fec_rows(fec)
    assert tuple(rows[0]) == COLUMNS
    # By validation, then journal and number; AC 3 belongs to the 15th (Paris).
    assert [(r[0], r[2]) for r in rows[1:]] == [("BQ", "1")] * 2 + [("AC", "1")] * 2 + [("AC", "2")] * 2 + [
        ("OD", "1")
    ] * 2
    assert rows[5][10] == "Hôtel Lódz"
    assert {r[15] for r in rows[1:]} == {"20260314"}

    with (folder / f"{NAME}.csv").open(encoding="utf-8", newline="") as handle:
        csv_rows = list(csv.DictReader(handle))
    parquet = pq.read_table(folder / f"{NAME}.parquet").to_pylist()
    as_fec = [(r[0], r[2], r[4], r[11], r[12]) for r in rows[1:]]
    assert [
        (
            r["journal_code"],
            r["entry_number"],
            r["account"],
            r["debit"].replace(".", ","),
            r["credit"].replace(".", ","),
        )
        for r in csv_rows
    ] == as_fec
    assert [(r["journal_code"], str(r["entry_number"]), r["account"]) for r in parquet] == [a[:3] for a in as_fec]
    assert parquet[2]["debit"] == Decimal("1234.56")

    manifest = json.loads((folder / "manifest.json").read_text())
    for name in (f"{NAME}.txt", f"{NAME}.csv", f"{NAME}.parquet"):
        assert manifest["files"][name] == {"sha256": sha256(folder / name), "bytes": (folder / name).stat().st_size}
    assert manifest["entries"] == 4 and manifest["lines"] == 8
    assert manifest["totals"]["AC"] == {"entries": 2, "lines": 4, "debit": "1314.66", "credit": "1314.66"}
    assert result.totals == manifest["totals"]

    with entries.connect() as conn:
        marked = conn.execute(
            sa.text("SELECT journal_code, entry_number, exported_in FROM marts.accounting_entries ORDER BY 1, 2")
        ).all()
        recorded = conn.execute(sa.text("SELECT fec_sha256, entry_count FROM app.accounting_exports")).one()
        audited = conn.execute(sa.text("SELECT actor, outcome FROM audit.events WHERE action = 'accounting_export'"))
        assert list(audited) == [("compta", "done")]
    assert {(j, n): e for j, n, e in marked} == {
        ("AC", 1): "EXP-20260314",
        ("AC", 2): "EXP-20260314",
        ("AC", 3): None,
        ("BQ", 1): "EXP-20260314",
        ("OD", 1): "EXP-20260314",
    }
    assert recorded == (manifest["files"][f"{NAME}.txt"]["sha256"], 4)


def test_a_rerun_is_byte_identical_and_the_next_day_takes_only_new_entries(entries: Engine, tmp_path: Path) -> None:
    run(entries, DAY, tmp_path)
    first = snapshot(tmp_path / "2026-03-14")
    # Posted late (a correction validated on the 14th after its export) and a new format setting:
    # the re-run of the 14th carries what it carried, written as it was.
    f.journal_entry(entries, "AC", 4, datetime(2026, 3, 14, 11, 0, tzinfo=UTC), "-80.10", label="Avoir")
    again = run(entries, DAY, tmp_path)
    assert again.rerun and snapshot(tmp_path / "2026-03-14") == first

    nxt = run(entries, date(2026, 3, 15), tmp_path)
    fec = tmp_path / "2026-03-15" / "000000000FEC20260315.txt"
    assert check_file(fec, FecFormat()) == []
    assert [(r[0], r[2]) for r in fec_rows(fec)[1:]] == [("AC", "3")] * 2 + [("AC", "4")] * 2
    assert nxt.entries == 2 and not nxt.rerun
    with entries.connect() as conn:
        per_export = conn.execute(
            sa.text("SELECT export_id, count(*) FROM app.exported_entries GROUP BY 1 ORDER BY 1")
        ).all()
        assert per_export == [("EXP-20260314", 4), ("EXP-20260315", 2)]
        # The database itself refuses an entry exported twice.
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(sa.text("INSERT INTO app.exported_entries VALUES ('EXP-20260315', 'AC', 2026, 1)"))


def test_a_faulty_file_is_not_delivered_and_nothing_is_recorded(entries: Engine, tmp_path: Path) -> None:
    f.journal_entry(entries, "BQ", 2, datetime(2026, 3, 14, 12, 0, tzinfo=UTC), "10.00", credit_amount="9.00")
    f.journal_entry(entries, "OD", 3, datetime(2026, 3, 14, 12, 0, tzinfo=UTC), "5.00", debit_account="X06")
    with pytest.raises(ExportFaulty) as refused:
        run(entries, DAY, tmp_path)
    problems = [str(fault) for fault in refused.value.faults]
    assert any("entry BQ 2 is not balanced" in p for p in problems), problems
    assert any("CompteNum" in p and "three digits" in p for p in problems), problems
    assert any("journal OD jumps from entry 1 to 3" in p for p in problems), problems
    assert not (tmp_path / "2026-03-14").exists()
    with entries.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.accounting_exports")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM app.exported_entries")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(exported_in) FROM marts.accounting_entries")).scalar_one() == 0
        refusal = conn.execute(
            sa.text("SELECT outcome, detail FROM audit.events WHERE action = 'accounting_export'")
        ).one()
    assert refusal.outcome == "refused" and "not delivered" in refusal.detail


@pytest.mark.parametrize("role", ["agent", "senior_agent"])
def test_roles_without_export_are_refused_and_audited(entries: Engine, tmp_path: Path, role: str) -> None:
    with pytest.raises(PermissionDenied):
        run(entries, DAY, tmp_path, Actor(f"{role}-1", role, frozenset({"refund"})))
    assert not tmp_path.joinpath("2026-03-14").exists()
    with entries.connect() as conn:
        assert conn.execute(
            sa.text("SELECT actor, outcome FROM audit.events WHERE action = 'accounting_export'")
        ).all() == [(f"{role}-1", "refused")]


def test_the_fiscal_year_fec_is_streamed_and_adds_up_to_the_daily_files(entries: Engine, tmp_path: Path) -> None:
    f.journal_entry(entries, "AC", 1, datetime(2025, 12, 31, 9, 0, tzinfo=UTC), "7.00", source_id="old")
    daily = [run(entries, DAY, tmp_path), run(entries, date(2026, 3, 15), tmp_path, SYSTEM_EXPORTER)]
    with entries.connect() as conn:
        year = fiscal_year_fec(conn, 2026, FecFormat(separator="pipe"), tmp_path / "year.txt")
    assert check_file(year.path, FecFormat(separator="pipe")) == []
    # The 2025 entry, never exported before, went into the 14th's file, not into 2026's FEC.
    assert year.lines == sum(d.lines for d in daily) - 2 == 10
    debit = sum(Decimal(t["debit"]) for d in daily for t in d.totals.values())
    assert year.debit == year.credit == debit - Decimal("7.00")
    dates = {line.split("|")[3][:4] for line in year.path.read_text(encoding="iso-8859-15").splitlines()[1:]}
    assert dates == {"2026"}
    assert not list(tmp_path.glob(".*partial"))


def test_a_killed_runs_work_folder_is_removed_by_the_next_run(
    entries: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed with -9 cannot remove its own work folder (a copy of the day's files); the next run does,
    and leaves alone the folder of a process still alive."""
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    (tmp_path / "tmp").mkdir()
    dead = tmp_path / "tmp" / f"backoffice-export-{_exited_pid()}-abc"  # a process that no longer runs
    alive = tmp_path / "tmp" / f"backoffice-export-{os.getppid()}-def"
    for folder in (dead, alive):
        folder.mkdir()
        (folder / "000000000FEC20260314.txt").write_text("a copy of a day's file")

    run(entries, DAY, tmp_path / "out")

    assert not dead.exists() and alive.exists()
    assert list((tmp_path / "tmp").iterdir()) == [alive]  # the run's own folder is gone too


def _exited_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
