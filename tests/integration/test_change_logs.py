"""The change logs the daily dbt builds read (app.matching_changes, app.mart_changes; migrations
0028-0030): a statement logs the dossiers it wrote, and one writing more rows than
`backoffice.bulk_statement_rows` logs `everything` instead (a bulk load's ~10 M rows cost the next
build 116 s to delete at a million dossiers). The limit is lowered for the test, as a session may."""

from __future__ import annotations

import factories as f
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

LOGS = ("app.matching_changes", "app.mart_changes")


def _travellers(conn: Connection, numbers: list[str], first: int, count: int) -> None:
    conn.execute(
        sa.text(
            """INSERT INTO app.travellers (dossier_number, traveller_id, first_name, last_name, kind)
               SELECT n, 'X' || i, 'Jean', 'Dupont', 'adult'
               FROM unnest(CAST(:numbers AS text[])) AS n,
                    generate_series(CAST(:first AS int), CAST(:last AS int)) AS i"""
        ),
        {"numbers": numbers, "first": first, "last": first + count - 1},
    )


def _logged(conn: Connection) -> dict[str, list[tuple[str | None, bool]]]:
    query = "SELECT dossier_number, everything FROM {} ORDER BY dossier_number"
    return {log: [tuple(r) for r in conn.execute(sa.text(query.format(log)))] for log in LOGS}


def _empty_logs(conn: Connection) -> None:
    for log in LOGS:
        conn.execute(sa.text(f"DELETE FROM {log}"))


def test_a_statement_past_the_limit_logs_everything_one_at_it_its_dossiers(db: Engine) -> None:
    numbers = [f.dossier(db), f.dossier(db)]
    with db.begin() as conn:
        _empty_logs(conn)
        conn.execute(sa.text("SET LOCAL backoffice.bulk_statement_rows = 4"))
        _travellers(conn, numbers, 1, 2)  # 4 rows: at the limit, each dossier once
        assert _logged(conn) == {log: [(n, False) for n in sorted(numbers)] for log in LOGS}

        _empty_logs(conn)
        _travellers(conn, numbers, 3, 3)  # 6 rows: past it
        assert _logged(conn) == {log: [(None, True)] for log in LOGS}

        _empty_logs(conn)
        conn.execute(
            sa.text("UPDATE app.travellers SET first_name = 'Marc' WHERE dossier_number = :n"), {"n": numbers[0]}
        )  # 5 rows and more: past it, an update too
        assert _logged(conn) == {log: [(None, True)] for log in LOGS}

        _empty_logs(conn)
        conn.execute(
            sa.text("DELETE FROM app.travellers WHERE dossier_number = :n AND traveller_id IN ('X1', 'X2')"),
            {"n": numbers[1]},
        )  # 2 rows: under it, a delete logs its dossier
        assert _logged(conn) == {log: [(numbers[1], False)] for log in LOGS}


def test_without_the_setting_a_day_sized_statement_logs_its_dossier(db: Engine) -> None:
    number = f.dossier(db)
    with db.begin() as conn:
        _empty_logs(conn)
        _travellers(conn, [number], 1, 50)
        assert _logged(conn) == {log: [(number, False)] for log in LOGS}
