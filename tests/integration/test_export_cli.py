"""`backoffice export --date` as a person runs it: files, counts and totals printed; faults on stderr."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import factories as f
from sqlalchemy.engine import Engine
from test_cli import backoffice


def test_export_writes_the_day_and_fails_with_the_faults(db: Engine, database_url: str, tmp_path: Path) -> None:
    f.build_accounting_entries_mart(database_url)
    f.journal_entry(db, "AC", 1, datetime(2026, 3, 14, 9, tzinfo=UTC), "120.00")
    done = backoffice("export", "--date", "2026-03-14", "--out", str(tmp_path), database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert f"export EXP-20260314 written to {tmp_path / '2026-03-14'}: 1 entries, 2 lines" in done.stdout
    assert "  AC: 1 entries, debit 120.00, credit 120.00" in done.stdout
    assert (tmp_path / "2026-03-14" / "000000000FEC20260314.txt").exists()

    f.journal_entry(db, "AC", 2, datetime(2026, 3, 15, 9, tzinfo=UTC), "50.00", credit_amount="40.00")
    failed = backoffice("export", "--date", "2026-03-15", "--out", str(tmp_path), database_url=database_url)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "not delivered" in failed.stderr and "entry AC 2 is not balanced" in failed.stderr
    assert not (tmp_path / "2026-03-15").exists()
