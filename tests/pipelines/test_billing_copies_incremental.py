"""The billing copies (int_search__*, int_margin__actual_costs) built incrementally equal a full refresh.

Twenty generated days are loaded with invoices naming what does not exist yet (those of the
matching's proof), and built whole. Then every kind of change the copies read is written straight
in SQL: the matching's random changes (travellers, supplements, cancellations, a new booking
version, a new dossier those old invoices name: their lines move to it, though no write names the
dossiers they leave), invoice lines added, deleted and edited, accountants' decisions (a
confirmation, a rejection, a manual match, a split) and a write-off. The incremental build must
recompute some dossiers only (those the log names and those the matching moved lines away from or
to) and give the rows a full refresh gives; a supplier's currency changed, which no log follows,
makes the next build recompute every dossier.
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from factories import generated_days
from sqlalchemy.engine import Engine
from test_matching_incremental import _change, _change_invoices, _copy, _old_invoices, _source

from backoffice.dbt_runner import run_dbt, target_path

START = date(2026, 3, 2)
DAYS = 20
COPIES = (
    "int_search__supplier_status",
    "int_search__dossier_status",
    "int_search__invoice_dossiers",
    "int_search__invoice_summary",
    "int_margin__actual_costs",
)
# Seeds and models, no data tests: the changes edit and delete posted invoice lines, as a restore
# would, which the journal's reconciliation tests rightly refuse.
BUILD = ["build", "--exclude-resource-type", "unit_test", "--exclude-resource-type", "test"]
ENTRY_VIEWS = ("supplier_invoices", "client_payments", "margin_vat", "client_invoices", "write_offs")
# What a journal line says, its number and export aside.
ENTRY = """journal_code, entry_date, account, aux_account, piece_ref, label, debit, credit, currency_amount,
    currency, source_type, source_id, dossier_number"""


ACTUAL_COSTS_UNIQUE = "unique_int_margin__actual_costs_supplier_code_invoice_number_line_number_dossier_number"


def _build(as_of: date, *checks: str) -> None:
    """A build as of `as_of`; with `checks`, those data tests run in it too (their `where` reads
    what the build recomputed, which only the build itself knows: the dossiers its matching moved)."""
    args = BUILD
    if checks:
        selected = ["--select", "resource_type:seed", "resource_type:model", *checks]
        args = ["build", "--exclude-resource-type", "unit_test", "--indirect-selection", "empty", *selected]
    run_dbt([*args, "--vars", f"{{accounting_as_of: '{as_of.isoformat()}'}}"])


def _actual_costs_check_reads_the_recomputed_dossiers(db: Engine, recomputed: set[str]) -> None:
    """The unique check of int_margin__actual_costs, as the build ran it, reads the dossiers the
    build recomputed: a duplicate row of another dossier is not read, one of theirs is."""
    (path,) = (target_path() / "compiled").rglob("unique_int_margin__actual_cost*.sql")  # the name is hashed
    sql = path.read_text(encoding="utf-8")
    listed = re.search(r"dossier_number = any\(array\[(.*?)\]::text\[\]\)", sql, re.S)
    assert listed is not None, sql
    assert set(re.findall(r"'([^']+)'", listed.group(1))) == recomputed
    with db.connect() as conn:
        numbers = sorted(
            conn.execute(sa.text("SELECT DISTINCT dossier_number FROM intermediate.int_margin__actual_costs")).scalars()
        )
    found = {}
    for number in (next(n for n in numbers if n not in recomputed), next(n for n in numbers if n in recomputed)):
        with db.connect() as conn:  # rolled back
            conn.execute(
                sa.text(
                    """INSERT INTO intermediate.int_margin__actual_costs
                       (SELECT * FROM intermediate.int_margin__actual_costs WHERE dossier_number = :n LIMIT 1)"""
                ),
                {"n": number},
            )
            found[number] = len(conn.execute(sa.text(sql)).all())
    assert list(found.values()) == [0, 1], found


def _journal(db: Engine) -> list[tuple]:
    with db.connect() as conn:
        return conn.execute(sa.text(f"SELECT {ENTRY} FROM marts.accounting_entries")).all()


def _posts_what_the_views_hold_unposted(db: Engine, before: list[tuple]) -> set[str]:
    """The journal's new lines are exactly the views' lines of the records it had not posted: the
    incremental run's reading of those records alone (the margin VAT of the dossiers changed or
    departed since) misses none and adds none. The margin VAT dossiers posted."""
    posted = {(r.source_type, r.source_id) for r in before}
    views = " UNION ALL ".join(f"SELECT {ENTRY} FROM intermediate.int_entries__{v}" for v in ENTRY_VIEWS)
    with db.connect() as conn:
        expected = [r for r in conn.execute(sa.text(views)).all() if (r.source_type, r.source_id) not in posted]
    added = [r for r in _journal(db) if (r.source_type, r.source_id) not in posted]
    assert sorted(added) == sorted(expected)
    return {r.source_id for r in added if r.source_type == "margin_vat"}


def _departed_in_the_eu(db: Engine, as_of: date) -> str:
    """A confirmed dossier departed by `as_of` to the EU: its margin carries VAT."""
    with db.connect() as conn:
        return conn.execute(
            sa.text(
                """SELECT dossier_number FROM app.dossiers
                   WHERE status = 'confirmed' AND departure_date <= :d
                     AND destination_country IN ('FR', 'ES', 'IT', 'DE', 'PT', 'GR', 'NL', 'BE', 'AT', 'HR')
                   ORDER BY 1 LIMIT 1"""
            ),
            {"d": as_of},
        ).scalar_one()


def _price_line(db: Engine, number: str, sale: str, purchase: str) -> None:
    """A price line added to the dossier, bought from no supplier (so its cost stays estimated)."""
    with db.begin() as conn:
        _copy(
            conn,
            "price_lines",
            "id = (SELECT min(id) FROM app.price_lines WHERE dossier_number = :n)",
            {"n": number},
            {
                "origin": "'modification'",
                "booking_version": "NULL",
                "line_id": f"'MARGIN-{sale}-' || id",
                "quantity": "1",
                "supplier_code": "NULL",
                "unit_sale_amount": sale,
                "sale_total": sale,
                "unit_purchase_amount": purchase,
                "purchase_total": purchase,
                "reverses_id": "NULL",
            },
        )


def _rows(db: Engine) -> dict[str, set[tuple]]:
    def hashable(row: sa.Row) -> tuple:
        return tuple(tuple(v) if isinstance(v, list) else v for v in row)

    with db.connect() as conn:
        return {t: {hashable(r) for r in conn.execute(sa.text(f"SELECT * FROM intermediate.{t}"))} for t in COPIES}


def _recomputed(model: str = "int_search__supplier_status") -> set[str] | None:
    """The dossiers the last build recomputed `model` for, or None when it computed every one."""
    path = target_path() / "compiled" / "backoffice" / "models" / "intermediate" / f"{model}.sql"
    sql = path.read_text(encoding="utf-8")
    if "scope.scope_dossier" not in sql:
        return None
    listed = re.search(r"unnest\(array\[(.*?)\]::text\[\]\)", sql, re.S)
    assert listed is not None
    return set(re.findall(r"'([^']+)'", listed.group(1)))


def _applied(db: Engine) -> sa.Row:
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.mart_changes")).scalar_one() == 0
        return conn.execute(sa.text("SELECT * FROM intermediate.int_mart_changes_applied")).one()


def _decide(db: Engine, rng: random.Random) -> set[str]:
    """A confirmation, a rejection, a manual match elsewhere and a split of matched lines, and a
    write-off: the dossiers they name."""
    with db.begin() as conn:
        matched = conn.execute(
            sa.text(
                """SELECT supplier_code, invoice_number, line_number, dossier_number, amount_incl_tax
                   FROM marts.supplier_invoice_line_matches
                   WHERE dossier_number IS NOT NULL AND invoice_number NOT LIKE 'OLD-%'
                   ORDER BY 1, 2, 3"""
            )
        ).all()
        confirmed, rejected, moved, split = rng.sample(matched, 4)
        elsewhere = (
            conn.execute(
                sa.text("SELECT dossier_number FROM app.dossiers WHERE dossier_number <> :n ORDER BY 1 LIMIT 2"),
                {"n": moved.dossier_number},
            )
            .scalars()
            .all()
        )
        decisions = [
            (confirmed, "confirm", confirmed.dossier_number, None),
            (rejected, "reject", rejected.dossier_number, None),
            (moved, "manual", elsewhere[0], None),
            (split, "manual", split.dossier_number, split.amount_incl_tax - 1),
            (split, "manual", elsewhere[1], 1),
        ]
        for line, decision, dossier, amount in decisions:
            conn.execute(
                sa.text(
                    """INSERT INTO app.reconciliation_decisions (supplier_code, invoice_number, line_number,
                           decision, dossier_number, amount_incl_tax, decided_by, reason)
                       VALUES (:s, :i, :l, :d, :n, :a, 'compta', 'test')"""
                ),
                {
                    "s": line.supplier_code,
                    "i": line.invoice_number,
                    "l": line.line_number,
                    "d": decision,
                    "n": dossier,
                    "a": amount,
                },
            )
        row = conn.execute(
            sa.text(
                """SELECT dossier_number, supplier_code, currency, expected_amount, invoiced_amount
                   FROM marts.supplier_billing_status WHERE status = 'partially_invoiced'
                   ORDER BY 1, 2 LIMIT 1"""
            )
        ).one()
        conn.execute(
            sa.text(
                """INSERT INTO app.write_offs (dossier_number, supplier_code, amount, invoiced_amount,
                       expected_amount, currency, threshold, reason, created_by)
                   VALUES (:n, :s, 0.50, :i, :e, :c, 1.00, 'test', 'compta')"""
            ),
            {
                "n": row.dossier_number,
                "s": row.supplier_code,
                "i": row.invoiced_amount,
                "e": row.expected_amount,
                "c": row.currency,
            },
        )
    return {d for _, _, d, _ in decisions} | {line.dossier_number for line, *_ in decisions} | {row.dossier_number}


def _equals_a_full_refresh(db: Engine, incremental: dict[str, set[tuple]]) -> None:
    run_dbt(["run", "--full-refresh", "--select", *COPIES])
    full = _rows(db)
    for table in COPIES:
        assert incremental[table] == full[table], (
            table,
            sorted(incremental[table] - full[table])[:5],
            sorted(full[table] - incremental[table])[:5],
        )


def test_billing_copies_built_incrementally_equal_a_full_refresh(db: Engine, tmp_path: Path) -> None:
    generated_days(db, tmp_path / "landing", START, DAYS, 12, seed=5)
    source = _source(db)
    _old_invoices(db, source)
    with db.connect() as conn:
        # The margin VAT is posted up to a day half the dossiers have departed by, then 30 days on.
        first_day = conn.execute(
            sa.text(
                """SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY departure_date)
                   FROM app.dossiers WHERE status = 'confirmed'"""
            )
        ).scalar_one()
    next_day = first_day + timedelta(days=30)
    # A dossier departed at a loss: no margin VAT, nothing posted, until a change below.
    at_a_loss = _departed_in_the_eu(db, first_day)
    _price_line(db, at_a_loss, "0", "100000")
    _build(first_day)
    assert _recomputed() is None  # the first build: every dossier
    assert _applied(db).fingerprint and _applied(db).margin_vat_as_of == first_day

    # Nothing changed since: no dossier recomputed, the same rows, nothing posted.
    before = _rows(db)
    journal = _journal(db)
    _build(first_day)
    assert _recomputed() == set() and _applied(db).moved_dossiers == 0
    assert _rows(db) == before
    assert sorted(_journal(db)) == sorted(journal)

    changed = _change(db, random.Random(7), source.dossier_number)
    _change_invoices(db, random.Random(8), source.supplier_code, source.start_date)
    decided = _decide(db, random.Random(9))
    with db.connect() as conn:
        posted = conn.execute(
            sa.text(
                "SELECT count(*) FROM marts.accounting_entries WHERE source_type = 'margin_vat' AND source_id = :n"
            ),
            {"n": at_a_loss},
        ).scalar_one()
    assert posted == 0
    _price_line(db, at_a_loss, "200000", "0")
    _build(next_day, ACTUAL_COSTS_UNIQUE)
    margin_vat = _posts_what_the_views_hold_unposted(db, journal)
    with db.connect() as conn:
        departed = set(
            conn.execute(
                sa.text(
                    """SELECT source_id FROM marts.accounting_entries
                       WHERE source_type = 'margin_vat' AND entry_date > :d"""
                ),
                {"d": first_day},
            ).scalars()
        )
    # Due by the change, and by the departures since the last build.
    assert at_a_loss in margin_vat and departed and departed <= margin_vat, (at_a_loss, departed, margin_vat)
    applied = _applied(db)
    recomputed = _recomputed()
    assert recomputed is not None and changed | decided <= recomputed, (changed | decided) - (recomputed or set())
    with db.connect() as conn:
        dossiers = conn.execute(sa.text("SELECT count(*) FROM app.dossiers")).scalar_one()
    assert len(recomputed) < dossiers / 2
    # The new dossier took the old invoices' lines from dossiers no write names.
    assert applied.moved_dossiers > 0
    incremental = _rows(db)
    assert incremental != before
    for model in COPIES[1:]:
        if model != "int_search__invoice_summary":  # rebuilt whole from the pairs
            assert _recomputed(model) == recomputed, model
    _actual_costs_check_reads_the_recomputed_dossiers(db, recomputed)
    _equals_a_full_refresh(db, incremental)

    # A supplier's currency, which no log follows: every dossier again.
    with db.begin() as conn:
        conn.execute(
            sa.text(
                """UPDATE app.suppliers SET currency = CASE WHEN currency = 'EUR' THEN 'USD' ELSE 'EUR' END
                   WHERE supplier_code = :s"""
            ),
            {"s": source.supplier_code},
        )
    _build(next_day)
    assert _recomputed() is None
    _equals_a_full_refresh(db, _rows(db))
    _build(next_day)
    assert _recomputed() == set()
