"""The matching's per-dossier tables built incrementally equal a full refresh, row for row.

A generated month is loaded and built; then random changes of every kind the tables read are
written straight in SQL, as any writer could (renamed, removed and added travellers, supplements,
cancelled, deleted and added services, cancelled dossiers, a new booking version, a new dossier,
a write under session_replication_role = replica):
the triggers of migration 0028 log them, an incremental build applies them, and a full refresh
must give the same rows. The incremental build must have read the log (not recomputed everything)
and emptied it.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.dbt_runner import run_dbt
from backoffice.generator import generate
from backoffice.ingest import load_bookings_day, load_supplier_invoices_day, load_suppliers

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


def _change(db: Engine, rng: random.Random) -> set[str]:
    """Random changes of every kind the per-dossier tables read; the dossiers changed."""
    changed: set[str] = set()
    dossiers_with = "SELECT DISTINCT dossier_number FROM app.{} ORDER BY 1"
    with db.begin() as conn:
        names = conn.execute(sa.text("SELECT DISTINCT last_name FROM app.travellers ORDER BY 1")).scalars().all()
        for number in _pick(conn, rng, dossiers_with.format("travellers"), 5):
            conn.execute(
                sa.text("UPDATE app.travellers SET last_name = :name WHERE dossier_number = :n"),
                {"name": rng.choice(names), "n": number},
            )
            changed.add(number)
        for number in _pick(conn, rng, dossiers_with.format("travellers"), 3):
            conn.execute(
                sa.text(
                    """DELETE FROM app.travellers WHERE (dossier_number, traveller_id) =
                       (SELECT dossier_number, max(traveller_id) FROM app.travellers
                        WHERE dossier_number = :n GROUP BY dossier_number)"""
                ),
                {"n": number},
            )
            changed.add(number)
        for number in _pick(conn, rng, dossiers_with.format("travellers"), 3):
            _copy(
                conn,
                "travellers",
                "dossier_number = :n AND traveller_id = (SELECT min(traveller_id) "
                "FROM app.travellers WHERE dossier_number = :n)",
                {"n": number},
                {"traveller_id": "traveller_id || '-new'", "first_name": "'Zoé'", "last_name": "'Du Pré'"},
            )
            changed.add(number)
        # Supplements: a new price line on a service, as a modification adds one.
        for number in _pick(conn, rng, dossiers_with.format("price_lines WHERE service_id IS NOT NULL"), 5):
            _copy(
                conn,
                "price_lines",
                "id = (SELECT min(id) FROM app.price_lines WHERE dossier_number = :n AND service_id IS NOT NULL)",
                {"n": number},
                {
                    "origin": "'modification'",
                    "booking_version": "NULL",
                    "line_id": "'SUPP-' || id",
                    "unit_purchase_amount": "37.50",
                    "reverses_id": "NULL",
                },
            )
            changed.add(number)
        for number in _pick(conn, rng, dossiers_with.format("services WHERE status = 'confirmed'"), 3):
            conn.execute(
                sa.text(
                    """UPDATE app.services SET status = 'cancelled' WHERE (dossier_number, service_id) =
                       (SELECT dossier_number, min(service_id) FROM app.services
                        WHERE dossier_number = :n AND status = 'confirmed' GROUP BY dossier_number)"""
                ),
                {"n": number},
            )
            changed.add(number)
        for number in _pick(conn, rng, dossiers_with.format("services"), 2):
            conn.execute(
                sa.text(
                    """DELETE FROM app.services WHERE (dossier_number, service_id) =
                       (SELECT dossier_number, max(service_id) FROM app.services
                        WHERE dossier_number = :n GROUP BY dossier_number)"""
                ),
                {"n": number},
            )
            changed.add(number)
        # A later service: the dossier's last date with that supplier moves.
        for number in _pick(conn, rng, dossiers_with.format("services"), 3):
            _copy(
                conn,
                "services",
                "dossier_number = :n AND service_id = (SELECT min(service_id) "
                "FROM app.services WHERE dossier_number = :n)",
                {"n": number},
                {
                    "service_id": "service_id || '-late'",
                    "start_date": "start_date + 40",
                    "end_date": "coalesce(end_date, start_date) + 45",
                },
            )
            changed.add(number)
        for number in _pick(conn, rng, "SELECT dossier_number FROM app.dossiers WHERE status = 'confirmed'", 3):
            conn.execute(
                sa.text("UPDATE app.dossiers SET status = 'cancelled' WHERE dossier_number = :n"), {"n": number}
            )
            changed.add(number)
        # A new booking version: the Devis drops the old booking lines for the new ones.
        for number in _pick(conn, rng, dossiers_with.format("price_lines WHERE origin = 'booking'"), 2):
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
        (source,) = _pick(conn, rng, dossiers_with.format("price_lines"), 1)
        new = "BK-2026-999999"
        params = {"n": source}
        _copy(conn, "dossiers", "dossier_number = :n", params, {"dossier_number": f"'{new}'"})
        for table in ("travellers", "services", "price_lines"):
            _copy(conn, table, "dossier_number = :n", params, {"dossier_number": f"'{new}'", "reverses_id": "NULL"})
        changed.add(new)
    # Bulk loads and restores silence triggers with replica mode: the log's still fire.
    with db.begin() as conn:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        for number in _pick(conn, rng, dossiers_with.format("travellers"), 2):
            conn.execute(
                sa.text("UPDATE app.travellers SET first_name = 'Anaïs' WHERE dossier_number = :n"), {"n": number}
            )
            changed.add(number)
    return changed


def test_incremental_tables_equal_a_full_refresh(db: Engine, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate(landing, START, DAYS, 12, seed=5)
    load_suppliers(START, landing, db)
    for offset in range(DAYS):
        day = START + timedelta(days=offset)
        load_bookings_day(day, landing, db)
        load_supplier_invoices_day(day, landing, db)
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
