"""The matching's per-dossier tables built incrementally equal a full refresh, row for row.

Twenty generated days are loaded and built; then random changes of every kind the tables read are
written straight in SQL, as any writer could (renamed, removed and added travellers, supplements,
cancelled, deleted and added services, cancelled dossiers, a new booking version, a new dossier,
a write under session_replication_role = replica): the triggers of migration 0028 log them, an
incremental build applies them, and a full refresh must give the same rows. The incremental build
must have read the log (not recomputed everything) and emptied it.
"""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from factories import generated_days
from sqlalchemy.engine import Engine

from backoffice.dbt_runner import run_dbt

START = date(2026, 3, 2)
DAYS = 20
TABLES = ("int_matching_dossier_keys", "int_matching_traveller_names", "int_matching_dossier_amounts")
SELECT = ["--select", "+int_matching_changes_applied"]


def _rows(db: Engine) -> dict[str, set[tuple]]:
    with db.connect() as conn:
        return {t: set(conn.execute(sa.text(f"SELECT * FROM intermediate.{t}")).all()) for t in TABLES}


def _pick(conn: sa.Connection, rng: random.Random, sql: str, k: int) -> list:
    rows = conn.execute(sa.text(sql)).scalars().all()
    return rng.sample(sorted(rows), k)


def _copy(conn: sa.Connection, table: str, where: str, params: dict, overrides: dict[str, str]) -> None:
    """Insert copies of the rows of app.<table> matching `where`, some columns replaced by SQL."""
    columns = (
        conn.execute(
            sa.text(
                """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'app' AND table_name = :t AND is_generated = 'NEVER'
                 AND column_name <> 'id'
               ORDER BY ordinal_position"""
            ),
            {"t": table},
        )
        .scalars()
        .all()
    )
    values = ", ".join(overrides.get(c, c) for c in columns)
    conn.execute(
        sa.text(f"INSERT INTO app.{table} ({', '.join(columns)}) SELECT {values} FROM app.{table} WHERE {where}"),
        params,
    )


# Statements run for each dossier picked (:n), by what they change.
RENAME = "UPDATE app.travellers SET last_name = :name WHERE dossier_number = :n"
DROP_TRAVELLER = """DELETE FROM app.travellers WHERE dossier_number = :n
    AND traveller_id = (SELECT max(traveller_id) FROM app.travellers WHERE dossier_number = :n)"""
CANCEL_SERVICE = """UPDATE app.services SET status = 'cancelled' WHERE dossier_number = :n
    AND service_id = (SELECT min(service_id) FROM app.services WHERE dossier_number = :n AND status = 'confirmed')"""
DROP_SERVICE = """DELETE FROM app.services WHERE dossier_number = :n
    AND service_id = (SELECT max(service_id) FROM app.services WHERE dossier_number = :n)"""
CANCEL_DOSSIER = "UPDATE app.dossiers SET status = 'cancelled' WHERE dossier_number = :n"
FIRST_TRAVELLER = (
    "dossier_number = :n AND traveller_id = (SELECT min(traveller_id) FROM app.travellers WHERE dossier_number = :n)"
)
FIRST_SERVICE = (
    "dossier_number = :n AND service_id = (SELECT min(service_id) FROM app.services WHERE dossier_number = :n)"
)
FIRST_SERVICE_LINE = "id = (SELECT min(id) FROM app.price_lines WHERE dossier_number = :n AND service_id IS NOT NULL)"


def _change(db: Engine, rng: random.Random) -> set[str]:
    """Random changes of every kind the per-dossier tables read; the dossiers changed."""
    changed: set[str] = set()
    having = "SELECT DISTINCT dossier_number FROM app.{} ORDER BY 1"

    def each(conn: sa.Connection, among: str, k: int, statement: str, **params: object) -> None:
        for number in _pick(conn, rng, among, k):
            conn.execute(sa.text(statement), {"n": number, **params})
            changed.add(number)

    def copy_each(conn: sa.Connection, among: str, k: int, table: str, where: str, overrides: dict[str, str]) -> None:
        for number in _pick(conn, rng, among, k):
            _copy(conn, table, where, {"n": number}, overrides)
            changed.add(number)

    with db.begin() as conn:
        names = conn.execute(sa.text("SELECT DISTINCT last_name FROM app.travellers ORDER BY 1")).scalars().all()
        for name in rng.sample(names, 5):
            each(conn, having.format("travellers"), 1, RENAME, name=name)
        each(conn, having.format("travellers"), 3, DROP_TRAVELLER)
        copy_each(
            conn,
            having.format("travellers"),
            3,
            "travellers",
            FIRST_TRAVELLER,
            {"traveller_id": "traveller_id || '-new'", "first_name": "'Zoé'", "last_name": "'Du Pré'"},
        )
        # Supplements: a new price line on a service, as a modification adds one.
        copy_each(
            conn,
            having.format("price_lines WHERE service_id IS NOT NULL"),
            5,
            "price_lines",
            FIRST_SERVICE_LINE,
            {
                "origin": "'modification'",
                "booking_version": "NULL",
                "line_id": "'SUPP-' || id",
                "unit_purchase_amount": "37.50",
                "reverses_id": "NULL",
            },
        )
        each(conn, having.format("services WHERE status = 'confirmed'"), 3, CANCEL_SERVICE)
        each(conn, having.format("services"), 2, DROP_SERVICE)
        # A later service: the dossier's last date with that supplier moves.
        copy_each(
            conn,
            having.format("services"),
            3,
            "services",
            FIRST_SERVICE,
            {
                "service_id": "service_id || '-late'",
                "start_date": "start_date + 40",
                "end_date": "coalesce(end_date, start_date) + 45",
            },
        )
        each(conn, "SELECT dossier_number FROM app.dossiers WHERE status = 'confirmed' ORDER BY 1", 3, CANCEL_DOSSIER)
        # A new booking version: the Devis drops the old booking lines for the new ones.
        for number in _pick(conn, rng, having.format("price_lines WHERE origin = 'booking'"), 2):
            version = conn.execute(
                sa.text(
                    "UPDATE app.dossiers SET platform_version = platform_version + 1 "
                    "WHERE dossier_number = :n RETURNING platform_version"
                ),
                {"n": number},
            ).scalar_one()
            _copy(
                conn,
                "price_lines",
                "dossier_number = :n AND origin = 'booking' AND booking_version = :v - 1",
                {"n": number, "v": version},
                {"booking_version": "booking_version + 1", "unit_purchase_amount": "unit_purchase_amount + 12"},
            )
            changed.add(number)
        # A new dossier, a copy of an old one under a new number.
        (source,) = _pick(conn, rng, having.format("price_lines"), 1)
        new = "BK-2026-999999"
        params = {"n": source}
        _copy(conn, "dossiers", "dossier_number = :n", params, {"dossier_number": f"'{new}'"})
        for table in ("travellers", "services", "price_lines"):
            _copy(conn, table, "dossier_number = :n", params, {"dossier_number": f"'{new}'", "reverses_id": "NULL"})
        changed.add(new)
    # Bulk loads and restores silence triggers with replica mode: the log's still fire.
    with db.begin() as conn:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        each(
            conn,
            having.format("travellers"),
            2,
            "UPDATE app.travellers SET first_name = 'Anaïs' WHERE dossier_number = :n",
        )
    return changed


def test_incremental_tables_equal_a_full_refresh(db: Engine, tmp_path: Path) -> None:
    generated_days(db, tmp_path / "landing", START, DAYS, 12, seed=5)
    run_dbt(["run", *SELECT])
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.matching_changes")).scalar_one() == 0
    before = _rows(db)

    changed = _change(db, random.Random(7))
    run_dbt(["run", *SELECT])
    with db.connect() as conn:
        applied = conn.execute(sa.text("SELECT * FROM intermediate.int_matching_changes_applied")).one()
        left = conn.execute(sa.text("SELECT count(*) FROM app.matching_changes")).scalar_one()
    assert not applied.everything
    assert applied.dossiers == len(changed)
    assert left == 0
    incremental = _rows(db)
    assert incremental != before  # the changes reached the tables

    run_dbt(["run", "--full-refresh", *SELECT])
    full = _rows(db)
    for table in TABLES:
        assert incremental[table] == full[table], (
            table,
            sorted(incremental[table] - full[table])[:5],
            sorted(full[table] - incremental[table])[:5],
        )
