"""A daily build checks the journal lines numbered after those the last build checked.

The journal is append-only: int_entries__checked keeps, once a build's checks of
marts.accounting_entries passed, each journal and year's last number and the count and totals of
its lines. The next daily build's gapless, balanced and column checks read the lines numbered after
it, and accounting_entries_checked_unchanged proves in one pass that the lines up to it still count
and total the same. A full or Sunday build reads every line.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from factories import generated_days
from sqlalchemy.engine import Engine

from backoffice.dbt_runner import DbtFailed, run_dbt, target_path

START = date(2026, 3, 2)
BUILD = ["build", "--exclude-resource-type", "unit_test"]
JOURNAL = [*BUILD, "--select", "accounting_entries", "int_entries__checked"]
SUNDAY = [*JOURNAL, "--vars", json.dumps({"mart_checks_all": True})]
SCOPED = (
    "accounting_entries_gapless",
    "accounting_entries_client_balance_matches_payments",
    "accounting_entries_balanced",
    "not_null_accounting_entries_label",
    "relationships_accounting_entri",
)
NOW = """SELECT journal_code, extract(year FROM entry_date)::integer, max(entry_number), count(*), sum(debit),
              sum(credit)
         FROM marts.accounting_entries GROUP BY 1, 2 ORDER BY 1, 2"""
CHECKED = "SELECT journal_code, fiscal_year, last_number, lines, debit, credit FROM intermediate.int_entries__checked"
# A journal line of the test's own, copied from a posted bank line and given its number and amounts.
FAKE = """INSERT INTO marts.accounting_entries
          SELECT journal_code, :number, entry_date, account, aux_account, account_label, piece_ref, piece_date,
                 CAST(:label AS text), CAST(:debit AS numeric), CAST(:credit AS numeric),
                 CAST(:debit AS numeric) + CAST(:credit AS numeric), currency, validated_at, 'payment', 'TEST-FAKE',
                 dossier_number, NULL
          FROM marts.accounting_entries WHERE journal_code = 'BQ' AND extract(year FROM entry_date) = :year
          ORDER BY entry_number LIMIT 1"""


def _sql(check: str) -> str:
    (path,) = (target_path() / "run").rglob(f"{check}*.sql")
    return path.read_text(encoding="utf-8")


def _rows(db: Engine, sql: str) -> list[tuple]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM ({sql}) AS s ORDER BY 1, 2"))]


def _fails(args: list[str], *checks: str) -> None:
    try:
        run_dbt(args)
    except DbtFailed as failed:
        for check in checks:
            assert check in str(failed), (check, failed)
    else:
        raise AssertionError(f"{checks} passed")


def _fake(db: Engine, year: int, *lines: tuple[int, str | None, str, str]) -> None:
    with db.begin() as conn:
        for number, label, debit, credit in lines:
            values = {"number": number, "label": label, "debit": debit, "credit": credit, "year": year}
            conn.execute(sa.text(FAKE), values)


def _unfake(db: Engine) -> None:
    with db.begin() as conn:
        conn.execute(sa.text("DELETE FROM marts.accounting_entries WHERE source_id = 'TEST-FAKE'"))


def test_the_journal_checks_read_the_lines_after_the_last_checked(db: Engine, tmp_path: Path) -> None:
    generated_days(db, tmp_path / "landing", START, 3, 12, seed=17, payments=True)
    run_dbt(BUILD)  # the first build: nothing kept (or kept empty by the fixture), every line read
    assert _rows(db, CHECKED) == _rows(db, NOW)

    with db.begin() as conn:
        dossier = conn.execute(
            sa.text("SELECT min(dossier_number) FROM app.dossiers WHERE status = 'confirmed'")
        ).scalar_one()
        conn.execute(
            sa.text(
                """INSERT INTO app.payments (payment_id, dossier_number, received_at, method, amount, currency, status,
                       provider, origin)
                   VALUES ('PAY-JOURNAL-1', :n, now(), 'transfer', 10.00, 'EUR', 'captured', 'bank', 'manual')"""
            ),
            {"n": dossier},
        )
    before = {(j, y): n for j, y, n, *_ in _rows(db, CHECKED)}
    run_dbt(BUILD)
    for check in SCOPED:
        assert "journal_years" in _sql(check), check
    checked = _rows(db, CHECKED)
    assert checked == _rows(db, NOW)
    with db.connect() as conn:
        year, last = conn.execute(
            sa.text(
                """SELECT extract(year FROM entry_date)::integer, entry_number FROM marts.accounting_entries
                   WHERE source_id = 'PAY-JOURNAL-1' LIMIT 1"""
            )
        ).one()
    assert last == before.get(("BQ", year), 0) + 1
    assert {(j, y): n for j, y, n, *_ in checked}[("BQ", year)] == last

    # Each break fails the daily build, and the checked state stays where the last build left it.
    with db.begin() as conn:  # a checked line's amount changed
        conn.execute(
            sa.text(
                """UPDATE marts.accounting_entries SET debit = debit + 1, credit = credit + 1
                   WHERE journal_code = 'BQ' AND entry_number = 1 AND extract(year FROM entry_date) = :y"""
            ),
            {"y": year},
        )
    _fails(JOURNAL, "accounting_entries_checked_unchanged")
    assert _rows(db, CHECKED) == checked
    with db.begin() as conn:
        conn.execute(
            sa.text(
                """UPDATE marts.accounting_entries SET debit = debit - 1, credit = credit - 1
                   WHERE journal_code = 'BQ' AND entry_number = 1 AND extract(year FROM entry_date) = :y"""
            ),
            {"y": year},
        )

    _fake(db, year, (1, "used number", "5.00", "0"), (1, "used number", "0", "5.00"))  # an old number again
    _fails(JOURNAL, "accounting_entries_checked_unchanged")
    _fails(SUNDAY, "accounting_entries_gapless")  # read whole: two sources on one number
    assert "journal_years" not in _sql("accounting_entries_gapless")
    _unfake(db)

    # After the last number checked: an unbalanced entry without a label, then a number skipped.
    _fake(db, year, (last + 1, None, "5.00", "0"), (last + 3, "gap", "5.00", "0"), (last + 3, "gap", "0", "5.00"))
    _fails(JOURNAL, "accounting_entries_balanced", "not_null_accounting_entries_label", "accounting_entries_gapless")
    _unfake(db)
    assert _rows(db, CHECKED) == checked

    run_dbt(JOURNAL)  # mended: passes, nothing new to record
    assert _rows(db, CHECKED) == checked

    # A journal rebuilt from scratch forgets what was checked: the next build checks every line.
    run_dbt(["run", "--full-refresh", "--select", "accounting_entries"])
    assert _rows(db, CHECKED) == []
    run_dbt(JOURNAL)
    assert _rows(db, CHECKED) == checked

    # A payment the journal cannot post (no exchange rate for its day): the check of the bank lines
    # against the payments reads the dossier the change log names, and fails.
    with db.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.payments (payment_id, dossier_number, received_at, method, amount, currency, status,
                       provider, origin)
                   VALUES ('PAY-NO-RATE', :n, '2001-01-02', 'transfer', 10.00, 'USD', 'captured', 'bank', 'manual')"""
            ),
            {"n": dossier},
        )
    _fails([*JOURNAL, "int_mart_changes"], "accounting_entries_client_balance_matches_payments")
    assert dossier in _sql("accounting_entries_client_balance_matches_payments")
