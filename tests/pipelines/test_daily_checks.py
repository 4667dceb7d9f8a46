"""A daily build checks the per-dossier views' rows of the dossiers changed since the last build.

The triggers of migration 0029 log what any writer changes (a payment, a traveller, an
accountant's decision, a supplier invoice line); the build's `rows_hold` checks of the per-dossier
views then read those dossiers only, each through the view filtered on it, and the log is emptied
once the checks passed. The first build after the migration (the log says `everything`), a
`--full-refresh` build and the pipeline's Sunday build check every dossier.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from factories import generated_days
from sqlalchemy.engine import Engine

from assets.dbt import BUILD_ARGS, build_args
from backoffice.dbt_runner import DbtFailed, run_dbt, target_path

START = date(2026, 3, 2)
BUILD = ["build", "--exclude-resource-type", "unit_test"]
CHECK = "dossier_billing_status_rows_hold"
TRAVELLERS_UNIQUE = "unique_stg_app__travellers_dossier_number_traveller_id"
LINES_CHECK = "not_null_stg_app__supplier_invoice_lines_signed_amount_incl_tax"
RENAME = "UPDATE app.travellers SET first_name = first_name || 'e' WHERE dossier_number = :n"


def _checked_sql() -> str:
    (path,) = (target_path() / "run").rglob(f"{CHECK}.sql")
    return path.read_text(encoding="utf-8")


def _scope(sql: str) -> set[str] | None:
    """The dossiers the check read, or None when it read the whole view."""
    if "scope.scope_dossier" not in sql:
        return None
    listed = re.search(r"unnest\(array\[(.*?)\]::text\[\]\)", sql, re.S)
    assert listed is not None
    return set(re.findall(r"'([^']+)'", listed.group(1)))


def _test_sql(name: str, stage: str = "run") -> str:
    """The SQL a data test ran in the last build (`compiled`: the test's own query, which returns the
    offending rows; `run` wraps it in a count)."""
    (path,) = (target_path() / stage).rglob(f"{name}.sql")
    return path.read_text(encoding="utf-8")


def _log(db: Engine) -> int:
    with db.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM app.mart_changes")).scalar_one()


def test_a_daily_build_checks_the_changed_dossiers_only(db: Engine, tmp_path: Path) -> None:
    generated_days(db, tmp_path / "landing", START, 6, 12, seed=11, payments=True)
    run_dbt(BUILD)
    assert _scope(_checked_sql()) is None  # the migration's `everything`: every dossier
    assert _log(db) == 0

    with db.begin() as conn:
        numbers = (
            conn.execute(
                sa.text("SELECT dossier_number FROM app.dossiers WHERE status = 'confirmed' ORDER BY 1 LIMIT 3")
            )
            .scalars()
            .all()
        )
        renamed, paid, decided = numbers
        conn.execute(sa.text(RENAME), {"n": renamed})
        conn.execute(
            sa.text(
                """INSERT INTO app.payments (payment_id, dossier_number, received_at, method, amount, currency, status,
                       provider, origin)
                   VALUES ('PAY-CHECK-1', :n, now(), 'transfer', 10.00, 'EUR', 'captured', 'bank', 'manual')"""
            ),
            {"n": paid},
        )
        line = conn.execute(
            sa.text(
                "SELECT supplier_code, invoice_number, line_number FROM app.supplier_invoice_lines "
                "ORDER BY 1, 2, 3 LIMIT 1"
            )
        ).one()
        conn.execute(
            sa.text(
                """INSERT INTO app.reconciliation_decisions (supplier_code, invoice_number, line_number, decision,
                       dossier_number, decided_by, reason)
                   VALUES (:s, :i, :l, 'reject', :n, 'compta', 'not ours')"""
            ),
            {"s": line.supplier_code, "i": line.invoice_number, "l": line.line_number, "n": decided},
        )
        # The line's own dossier, by the matching: its first candidate.
        matched = (
            conn.execute(
                sa.text(
                    """SELECT dossier_number FROM intermediate.int_matching_candidates
                   WHERE supplier_code = :s AND invoice_number = :i AND line_number = :l AND candidate_rank = 1"""
                ),
                {"s": line.supplier_code, "i": line.invoice_number, "l": line.line_number},
            )
            .scalars()
            .all()
        )
    assert _log(db) > 0

    run_dbt(BUILD)
    # A decision is logged by its line: the dossiers its decisions name and the one it was matched to.
    assert _scope(_checked_sql()) == {renamed, paid, decided, *matched}
    assert _log(db) == 0
    with db.connect() as conn:
        applied = conn.execute(sa.text("SELECT * FROM intermediate.int_mart_changes_applied")).one()
    assert not applied.everything and (applied.dossiers, applied.invoice_lines) == (2, 1)
    # The staging views' and the sources' checks read what the log named, as it stood before the
    # build emptied it: the dossiers of the writes, and the decided line.
    for check in (TRAVELLERS_UNIQUE, "unique_stg_app__payments_payment_id", "source_unique_app_payments_payment_id"):
        assert _scope(_test_sql(check)) == {renamed, paid}, check
    lines_sql = _test_sql(LINES_CHECK)
    assert '"app"."mart_changes"' in lines_sql and "line_rows" in lines_sql
    travellers_sql = _test_sql(TRAVELLERS_UNIQUE, "compiled")
    _a_duplicate_is_found_in_the_logged_dossiers_only(db, travellers_sql, renamed, {renamed, paid})

    # A new supplier invoice's line stands for the dossier the matching gives it: a copy of that line.
    key = {"s": line.supplier_code, "i": line.invoice_number, "l": line.line_number}
    with db.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.supplier_invoices (supplier_code, invoice_number, kind, invoice_date, due_date,
                       currency, sha256, source_file)
                   SELECT supplier_code, invoice_number || '-BIS', kind, invoice_date, due_date, currency, sha256,
                          source_file
                   FROM app.supplier_invoices WHERE supplier_code = :s AND invoice_number = :i"""
            ),
            key,
        )
        conn.execute(
            sa.text(
                """INSERT INTO app.supplier_invoice_lines
                   SELECT supplier_code, invoice_number || '-BIS', 1, reference, description, amount_excl_tax,
                          vat_rate, amount_incl_tax
                   FROM app.supplier_invoice_lines
                   WHERE supplier_code = :s AND invoice_number = :i AND line_number = :l"""
            ),
            key,
        )
    run_dbt(BUILD)
    scope = _scope(_checked_sql())
    with db.connect() as conn:
        copy_matched = (
            conn.execute(
                sa.text(
                    """SELECT dossier_number FROM intermediate.int_matching_candidates
                       WHERE supplier_code = :s AND invoice_number = :i || '-BIS' AND candidate_rank = 1"""
                ),
                key,
            )
            .scalars()
            .all()
        )
    assert copy_matched and scope == set(copy_matched)

    run_dbt(["build", "--full-refresh", "--select", CHECK])
    assert _scope(_checked_sql()) is None

    # The pipeline's Sunday build checks every dossier, the other days' the changed ones.
    with db.begin() as conn:
        conn.execute(sa.text(RENAME), {"n": renamed})
    assert build_args(date(2026, 11, 27)) == BUILD_ARGS
    run_dbt([*build_args(date(2026, 11, 27)), "--select", "int_mart_changes", CHECK, TRAVELLERS_UNIQUE])
    assert _scope(_checked_sql()) == {renamed} == _scope(_test_sql(TRAVELLERS_UNIQUE))
    run_dbt([*build_args(date(2026, 11, 29)), "--select", "int_mart_changes", CHECK, TRAVELLERS_UNIQUE])
    assert _scope(_checked_sql()) is None
    assert _scope(_test_sql(TRAVELLERS_UNIQUE)) is None


def _a_duplicate_is_found_in_the_logged_dossiers_only(db: Engine, sql: str, duplicated: str, logged: set[str]) -> None:
    """The daily SQL of the travellers' unique check, run on a copy of the view holding duplicate keys
    in a logged dossier and one in a dossier the log does not name: only the first come back."""
    view = re.search(r'"[^"]+"\."staging"\."stg_app__travellers"', sql)
    assert view is not None, sql
    with db.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS scratch CASCADE; CREATE SCHEMA scratch"))
        conn.execute(sa.text("CREATE TABLE scratch.travellers AS SELECT * FROM staging.stg_app__travellers"))
        conn.execute(
            sa.text(
                """INSERT INTO scratch.travellers
                   SELECT * FROM staging.stg_app__travellers WHERE dossier_number = :duplicated
                   UNION ALL (
                       SELECT * FROM staging.stg_app__travellers WHERE dossier_number <> ALL(:logged) LIMIT 1
                   )"""
            ),
            {"duplicated": duplicated, "logged": sorted(logged)},
        )
    try:
        with db.connect() as conn:
            found = conn.execute(sa.text(sql.replace(view.group(0), "scratch.travellers"))).all()
    finally:
        with db.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA scratch CASCADE"))
    assert found and {row[0].split("/")[0] for row in found} == {duplicated}


ENTRIES_CHECK = "int_entries__client_payments_rows_hold"


def _entries_check_sql() -> str:
    (path,) = (target_path() / "run").rglob(f"{ENTRIES_CHECK}.sql")
    return path.read_text(encoding="utf-8")


def test_the_payments_check_reads_what_the_build_posts(db: Engine, tmp_path: Path) -> None:
    """The check of the bank journal's source rows reads the payments the journal has no line for yet,
    and still fails a build on one of them (no exchange rate covers its day)."""
    generated_days(db, tmp_path / "landing", START, 3, 12, seed=12, payments=True)
    run_dbt(BUILD)  # the journal exists after this one
    run_dbt(BUILD)
    assert "p.moves_money" in _entries_check_sql()  # the payments the journal has no line for

    with db.begin() as conn:
        number = conn.execute(sa.text("SELECT min(dossier_number) FROM app.dossiers")).scalar_one()
        conn.execute(
            sa.text(
                """INSERT INTO app.payments (payment_id, dossier_number, received_at, method, amount, currency, status,
                       provider, origin)
                   VALUES ('PAY-NO-RATE', :n, '2001-01-02', 'transfer', 10.00, 'USD', 'captured', 'bank', 'manual')"""
            ),
            {"n": number},
        )
    for args in (BUILD, ["build", "--full-refresh", "--select", ENTRIES_CHECK]):
        try:
            run_dbt(args)
        except DbtFailed as failed:
            assert ENTRIES_CHECK in str(failed)
        else:
            raise AssertionError("a payment without an exchange rate passed the check")
    assert "p.moves_money" not in _entries_check_sql()  # a full build: every payment
    with db.connect() as conn:
        posted = conn.execute(
            sa.text("SELECT count(*) FROM marts.accounting_entries WHERE source_id = 'PAY-NO-RATE'")
        ).scalar_one()
    assert posted == 0


LINE_CHECKS = (
    "matching_every_line_once",
    "supplier_invoice_line_matches_rows_hold",
    "int_invoice_lines__matched_rows_hold",
    "relationships_supplier_invoice_",  # the matches' dossiers exist (where: changed_lines); name hashed
)


def _line_check_sql(check: str) -> str:
    (path,) = (target_path() / "run").rglob(f"{check}*.sql")
    return path.read_text(encoding="utf-8")


def test_the_line_checks_read_the_lines_that_may_differ(db: Engine, tmp_path: Path) -> None:
    """A daily build's line-level checks read the lines it recomputed and those the change log names,
    each by its key, and still fail a build on one of them (an accountant's split whose parts do not
    add up to the line); a full build reads every line."""
    generated_days(db, tmp_path / "landing", START, 3, 12, seed=13)
    run_dbt(BUILD)
    for check in LINE_CHECKS:
        assert "scope.supplier_code" not in _line_check_sql(check), check  # the first build: every line
    run_dbt(BUILD)
    for check in LINE_CHECKS:
        assert "int_mart_changed_lines" in _line_check_sql(check), check

    with db.begin() as conn:
        line = conn.execute(
            sa.text(
                """SELECT supplier_code, invoice_number, line_number, amount_incl_tax, dossier_number
                   FROM marts.supplier_invoice_line_matches WHERE dossier_number IS NOT NULL ORDER BY 1, 2, 3 LIMIT 1"""
            )
        ).one()
        for part in (line.amount_incl_tax, 1):  # one unit more than the line
            conn.execute(
                sa.text(
                    """INSERT INTO app.reconciliation_decisions (supplier_code, invoice_number, line_number,
                           decision, dossier_number, amount_incl_tax, decided_by, reason)
                       VALUES (:s, :i, :l, 'manual', :n, :a, 'compta', 'split')"""
                ),
                {
                    "s": line.supplier_code,
                    "i": line.invoice_number,
                    "l": line.line_number,
                    "n": line.dossier_number,
                    "a": part,
                },
            )
    for args in (BUILD, ["build", "--full-refresh", "--select", "matching_every_line_once"]):
        try:
            run_dbt(args)
        except DbtFailed as failed:
            assert "matching_every_line_once" in str(failed)
        else:
            raise AssertionError("a split whose parts exceed the line passed the check")
    assert "scope.supplier_code" not in _line_check_sql("matching_every_line_once")
