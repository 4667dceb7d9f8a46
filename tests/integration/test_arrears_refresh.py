"""The arrears refresh (migration 0027) against statistics that say its tables are empty.

A day's bookings load runs in one transaction; an ANALYZE from another session meanwhile (autovacuum)
does not count the load's rows and records the tables as empty. Under 0023/0024 the refresh's
plan then read the whole of app.payment_schedule for every batch (a nested-loop semi-join), a cost
growing with the day loaded (docs/ingest.md). Here: 20,000 dossiers and 40,000 schedule lines are
written in an open transaction, another session analyses, and a refresh of 10 dossiers must touch
a few hundred buffers (the 0024 function: ~41,000). And the arrears the triggers keep are the ones
0023's set-based query computes.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

VERSIONS = Path(__file__).resolve().parents[2] / "backoffice" / "db" / "migrations" / "versions"

DOSSIERS = """
INSERT INTO app.dossiers (dossier_number, platform_version, status, channel, brand, currency, departure_date,
    return_date, destination, destination_country, client_id, client_first_name, client_last_name, created_at,
    updated_at)
SELECT 'AR' || lpad(i::text, 6, '0'), 1, 'confirmed', 'web', 'b' || (i % 7), 'EUR', date '2026-06-01' + i % 200,
    date '2026-06-10' + i % 200, 'dest' || (i % 50), 'FR', 'C' || i, 'F' || i, 'L' || i, now(), now()
FROM generate_series(1, :n) i"""


def _arrears_0023() -> str:
    spec = importlib.util.spec_from_file_location("_arrears_0023_test", VERSIONS / "0023_search_arrears.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.ARREARS.format(numbers="SELECT dossier_number FROM app.dossiers WHERE dossier_number LIKE 'AR%'")


def test_refresh_reads_by_number_when_statistics_say_the_tables_are_empty(db: Engine) -> None:
    numbers = [f"AR{i:06d}" for i in range(100, 110)]
    with db.connect() as load:
        load.execute(sa.text(DOSSIERS), {"n": 20_000})
        load.execute(
            sa.text(
                "INSERT INTO app.payment_schedule (dossier_number, seq, due_date, amount, kind, method) "
                "SELECT 'AR' || lpad(i::text, 6, '0'), s, date '2026-01-01' + (i + s * 30) % 300, 100 * s, "
                "'instalment', 'transfer' FROM generate_series(1, 20000) i, generate_series(1, 2) s"
            )
        )
        load.execute(
            sa.text(
                "INSERT INTO app.payments (payment_id, dossier_number, received_at, method, amount, currency, status) "
                "SELECT 'ARPAY' || i, 'AR' || lpad((i * 5)::text, 6, '0'), now(), 'card', 100, 'EUR', 'captured' "
                "FROM generate_series(1, 4000) i"
            )
        )
        # what autovacuum does during a long load: the load's rows are not committed, so not counted
        with db.connect().execution_options(isolation_level="AUTOCOMMIT") as other:
            other.execute(sa.text("ANALYZE app.payment_schedule, app.dossiers, app.payments, app.payment_attributions"))
            assert (
                other.execute(
                    sa.text("SELECT reltuples FROM pg_class WHERE oid = 'app.payment_schedule'::regclass")
                ).scalar_one()
                == 0
            )
        try:
            for _ in range(6):  # the plan cache's custom plans, then its generic one
                load.execute(sa.text("SELECT app.refresh_arrears(:n)"), {"n": numbers})
            plan = load.execute(
                sa.text("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT app.refresh_arrears(:n)"), {"n": numbers}
            ).scalar_one()
            node = (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]
            buffers = node["Shared Hit Blocks"] + node["Shared Read Blocks"]
            # by number: a few index pages per table and dossier (~200 here); the 0024 plan read ~41,000
            assert buffers < 2_000, buffers
            rows = load.execute(
                sa.text("SELECT count(*) FROM app.dossier_arrears WHERE dossier_number = ANY(:n)"), {"n": numbers}
            ).scalar_one()
            assert rows == 10  # 100 then 200 due, nothing paid on these ten: each in arrears
        finally:
            load.rollback()
    with db.connect().execution_options(isolation_level="AUTOCOMMIT") as other:
        other.execute(sa.text("ANALYZE app.payment_schedule, app.dossiers, app.payments, app.payment_attributions"))


def test_refresh_keeps_what_the_0023_query_computes(db: Engine) -> None:
    with db.connect() as conn:
        try:
            conn.execute(sa.text(DOSSIERS), {"n": 40})
            # several lines a day, negative lines, dossiers with none; payments captured, failed,
            # attributed elsewhere; one statement each (one refresh each), then more by update
            conn.execute(
                sa.text(
                    "INSERT INTO app.payment_schedule (dossier_number, seq, due_date, amount, kind, method) "
                    "SELECT 'AR' || lpad(i::text, 6, '0'), s, date '2026-01-01' + (i * s) % 9, "
                    "CASE WHEN (i + s) % 5 = 0 THEN -50 ELSE 40 * s END, 'instalment', 'transfer' "
                    "FROM generate_series(1, 36) i, generate_series(1, 1 + i % 4) s"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO app.payments (payment_id, dossier_number, received_at, method, amount, currency, "
                    "status) SELECT 'ARPAY' || i, 'AR' || lpad((1 + i % 40)::text, 6, '0'), now(), 'card', "
                    "25 * (1 + i % 6), 'EUR', CASE WHEN i % 7 = 0 THEN 'failed' ELSE 'captured' END "
                    "FROM generate_series(1, 90) i"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO app.payment_attributions (payment_id, dossier_number, reason, attributed_by) "
                    "SELECT 'ARPAY' || i, 'AR' || lpad((1 + (i * 3) % 40)::text, 6, '0'), 'test', 'test' "
                    "FROM generate_series(1, 90, 4) i"
                )
            )
            conn.execute(sa.text("UPDATE app.payment_schedule SET amount = amount + 15 WHERE seq = 2"))
            kept = conn.execute(
                sa.text(
                    "SELECT dossier_number, arrears::text, departure_date FROM app.dossier_arrears "
                    "WHERE dossier_number LIKE 'AR%' ORDER BY 1"
                )
            ).all()
            computed = conn.execute(
                sa.text(f"SELECT dossier_number, arrears::text, departure_date FROM ({_arrears_0023()}) a ORDER BY 1")
            ).all()
            assert len(kept) > 10 and len(kept) < 40  # some in arrears, some not: a comparison that says something
            assert kept == computed
        finally:
            conn.rollback()
