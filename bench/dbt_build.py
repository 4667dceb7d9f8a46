"""The dbt project at scale: `dbt build --full-refresh` on N dossiers, then the daily incremental `dbt build`.

Dataset (tiny 2,000, small 100,000, medium 300,000, full 1,000,000 dossiers over the year before
TODAY): the dossiers, travellers, services, booking price lines, payment schedule and payments of
bench/search.py (the generator's distributions built as columns with numpy/polars and COPYed; dossiers
renumbered BK-2025-000001.. / BK-2026-000001.., six digits as the matching rules expect), then,
set-based in SQL (INSERT ... SELECT, no Python per row):
- the suppliers of the generator's catalogue;
- a second price line on every lodging service (city tax, same supplier) and a transfer service with
  its line on 60 % of the dossiers: ~3 services and ~4 price lines a dossier, of 3-4 suppliers;
- supplier invoices, one a supplier, currency and week of booking, whose lines cover 88 % of the
  confirmed services (amount = the service's purchase total, 3 % of them 2 % off); the line's
  reference is the dossier number (55 %, as written or typed with a two-digit year), the supplier's
  booking reference (30 %), the traveller's name only (10 %: needs the scoring) or nothing
  recognisable (5 %: stays unmatched).
Client invoices are not generated: they carry a PDF, XML and a hash chain per invoice (the
invoicing service's job), which costs more than the whole dataset; their models run on no rows.

Triggers (search terms, arrears, immutability) are off while loading (`session_replication_role =
replica`): dbt reads none of what they maintain. The database (`backoffice_bench_<scale>_dbt_data`)
is kept between runs and rebuilt when the dataset's parameters or the migrations change.

The day of activity (DAY = TODAY + 1), added after the full build and taken away before the next
run (its rows carry a DAY- / bench-day marker, and the dossiers it changes are saved first):
~3,000 dossiers changed (2,700 with a supplement line and its card payment, 300 cancelled), and the
day's supplier invoices covering 3,000 services that had none.

dbt runs as `backoffice.dbt_runner` runs it (same executable, profile and threads) but with a target
directory of its own, so run_results.json gives the per-node timings of this run only.
`python -m bench.dbt_build --scale small` runs the figures alone and prints the 10 slowest nodes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from backoffice.dbt_runner import run_dbt_process
from backoffice.generator import catalog
from bench import accounting, harness, search
from bench.report import Figure

FULL_TARGET_S = 300.0
DAILY_TARGET_S = 60.0
DOSSIERS = {"tiny": 2_000, "small": 100_000, "medium": 300_000, "full": 1_000_000}
DAY = search.TODAY + timedelta(days=1)
DAY_CHANGED = {"tiny": 60, "small": 3_000, "medium": 3_000, "full": 3_000}
DATASET_VERSION = 2  # bump when the SQL below changes what the dataset holds
# As the Dagster job runs dbt (assets/dbt.py BUILD_ARGS): unit tests run in `make test`, not in production.
BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]

SUPPLIERS_SQL = """
INSERT INTO app.suppliers (supplier_code, name, country, vat_number, iban, currency, payment_terms_days, ledger_account)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"""

# ~3 services and ~4 price lines a dossier: the city tax of the lodging, a transfer on 60 %.
EXTRA_SQL = [
    """INSERT INTO app.price_lines (dossier_number, service_id, line_id, origin, booking_version, label, quantity,
           unit_sale_amount, sale_currency, unit_purchase_amount, purchase_currency, vat_rate, supplier_code,
           created_at)
       SELECT p.dossier_number, p.service_id, 'L' || p.service_id || '-TAX', 'booking', 1, 'City tax', 1,
              round(p.unit_sale_amount * 0.02, 2), p.sale_currency, round(p.unit_sale_amount * 0.02, 2),
              p.purchase_currency, 0, p.supplier_code, p.created_at
       FROM app.price_lines p WHERE p.service_id = 'S1'""",
    """CREATE TEMP TABLE transfers AS
       SELECT s.dossier_number, s.start_date, s.end_date, s.status, d.currency, d.created_at, d.sale_total,
              (ARRAY[{transfers}])[1 + abs(hashtext(s.dossier_number)) % {n_transfers}] AS supplier_code,
              'TR' || upper(substr(md5(s.dossier_number || 'transfer'), 1, 8)) AS reference
       FROM app.services s JOIN app.dossiers d USING (dossier_number)
       WHERE s.service_id = 'S1' AND abs(hashtext(s.dossier_number || 'T')) % 10 < 6""",
    """INSERT INTO app.services (dossier_number, service_id, kind, supplier_code, supplier_reference, label,
           start_date, end_date, status)
       SELECT dossier_number, 'S4', 'transfer', supplier_code, reference, 'Transfer ' || supplier_code,
              start_date, start_date, status
       FROM transfers""",
    """INSERT INTO app.price_lines (dossier_number, service_id, line_id, origin, booking_version, label, quantity,
           unit_sale_amount, sale_currency, unit_purchase_amount, purchase_currency, vat_rate, supplier_code,
           created_at)
       SELECT dossier_number, 'S4', 'LS4', 'booking', 1, 'Transfer', 1, round(sale_total * 0.04, 2), currency,
              round(sale_total * 0.03, 2), currency, 0, supplier_code, created_at
       FROM transfers""",
    """UPDATE app.dossiers d SET sale_total = d.sale_total + x.extra
       FROM (SELECT dossier_number, sum(unit_sale_amount) AS extra FROM app.price_lines
             WHERE line_id IN ('LS1-TAX', 'LS4') GROUP BY dossier_number) x
       WHERE x.dossier_number = d.dossier_number""",
]

# One line per invoiced service; `bucket` (0-99, from a hash) decides how the reference is written.
INVOICED_SQL = """
CREATE TEMP TABLE invoiced AS
SELECT s.dossier_number, s.service_id, s.supplier_code, s.supplier_reference, pl.currency,
       pl.amount, d.created_at, t.last_name,
       abs(hashtext(s.dossier_number || s.service_id)) %% 100 AS bucket,
       least(s.start_date + 3, (d.created_at AT TIME ZONE 'UTC')::date + 20) AS invoice_date
FROM app.services s
JOIN app.dossiers d USING (dossier_number)
JOIN (SELECT dossier_number, service_id, min(purchase_currency) AS currency,
             sum(unit_purchase_amount * quantity) AS amount
      FROM app.price_lines GROUP BY dossier_number, service_id) pl USING (dossier_number, service_id)
JOIN app.travellers t ON t.dossier_number = s.dossier_number AND t.traveller_id = 'T1'
WHERE s.status = 'confirmed' AND abs(hashtext(s.dossier_number || s.service_id || 'inv')) %% 100 < 88
  AND least(s.start_date + 3, (d.created_at AT TIME ZONE 'UTC')::date + 20) <= :today
"""

# Invoice lines of `invoiced` rows (with invoice_number set), numbered within their invoice.
INVOICE_LINES_SQL = """
INSERT INTO app.supplier_invoice_lines (supplier_code, invoice_number, line_number, reference, description,
    amount_excl_tax, vat_rate, amount_incl_tax)
SELECT supplier_code, invoice_number,
       row_number() OVER (PARTITION BY supplier_code, invoice_number ORDER BY dossier_number, service_id),
       CASE WHEN bucket < 45 THEN dossier_number
            WHEN bucket < 55 THEN 'Dossier ' || replace(dossier_number, 'BK-20', 'BK-')
            WHEN bucket < 85 THEN supplier_reference
            WHEN bucket < 95 THEN 'Voyage ' || upper(last_name)
            ELSE 'REF' || substr(md5(dossier_number || service_id), 1, 10) END,
       'Service ' || service_id,
       amount * f, 0, amount * f
FROM (SELECT *, CASE WHEN bucket % 33 = 7 THEN 0.98 ELSE 1 END AS f FROM invoiced_numbered) x
"""

INVOICES_SQL = """
INSERT INTO app.supplier_invoices (supplier_code, invoice_number, kind, invoice_date, due_date, currency, sha256,
    source_file, origin, received_at)
SELECT supplier_code, invoice_number, 'invoice', max(invoice_date), max(invoice_date) + 30, currency,
       md5(invoice_number) || md5(supplier_code), :source, 'ingestion', max(invoice_date) + time '08:00'
FROM invoiced_numbered GROUP BY supplier_code, invoice_number, currency
"""


def _renumber(frame: pl.DataFrame, n: int) -> pl.DataFrame:
    """search.py numbers dossiers BK-2026-0000001 (7 digits); real numbers have 6 (BK-2026-000123), which
    the matching rules look for: the first half becomes BK-2025-000001.., the second BK-2026-000001.."""
    k = pl.col("dossier_number").str.slice(8).cast(pl.Int64)
    half = n // 2
    early = k <= half
    return frame.with_columns(
        dossier_number=pl.concat_str(
            pl.lit("BK-"),
            pl.when(early).then(pl.lit("2025")).otherwise(pl.lit("2026")),
            pl.lit("-"),
            pl.when(early).then(k).otherwise(k - half).cast(pl.String).str.zfill(6),
        )
    )


def _url(scale: harness.Scale) -> str:
    name = f"backoffice_bench_{scale.name}_dbt_data"
    return make_url(harness.server_url()).set(database=name).render_as_string(hide_password=False)


def _comment(url: str) -> str | None:
    name = make_url(url).database
    admin = sa.create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return conn.execute(
                sa.text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :name"),
                {"name": name},
            ).scalar_one_or_none()
    finally:
        admin.dispose()


def dataset(scale: harness.Scale) -> tuple[str, float | None]:
    """The URL of this scale's dbt database, built if missing or stale; and the build time (None: cached)."""
    n = DOSSIERS[scale.name]
    key = json.dumps(
        {"dossiers": n, "seed": search.SEED, "v": DATASET_VERSION, "schema": search._schema_version()}, sort_keys=True
    )
    url = _url(scale)
    if _comment(url) == key:
        return url, None
    started = time.perf_counter()
    harness.drop_bench_database(f"{scale.name}_dbt_data")
    assert harness.bench_database(f"{scale.name}_dbt_data") == url
    rng = np.random.default_rng(search.SEED)
    dossiers = search._dossiers(rng, n)
    children = {table: _renumber(frame, n) for table, frame in search._children(rng, dossiers).items()}
    dossiers = _renumber(dossiers, n)
    with search._psycopg(url) as conn, conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        search._copy(
            cur, "app.dossiers", dossiers.select(search.DOSSIER_COLUMNS).with_columns(platform_version=pl.lit(1))
        )
        del dossiers
        for table, frame in children.items():
            search._copy(cur, table, frame)
        del children
        for s in catalog.SUPPLIERS:
            cur.execute(
                SUPPLIERS_SQL,
                (s.code, s.name, s.country, s.vat_number, s.iban, s.currency, s.payment_terms_days, s.ledger_account),
            )
        transfers = sorted({d.transfer for d in catalog.DESTINATIONS if d.transfer})
        for statement in EXTRA_SQL:
            cur.execute(
                statement.replace("{transfers}", ", ".join(f"'{t}'" for t in transfers)).replace(
                    "{n_transfers}", str(len(transfers))
                )
            )
        cur.execute(INVOICED_SQL.replace(":today", "%(today)s"), {"today": search.TODAY})
        # Invoices: one a supplier, currency and ISO week of the invoice date.
        cur.execute(
            """CREATE TEMP TABLE invoiced_numbered AS
               SELECT *, supplier_code || '-' || currency || '-' || to_char(invoice_date, 'IYYY-IW') AS invoice_number
               FROM invoiced"""
        )
        cur.execute(INVOICES_SQL.replace(":source", "%(source)s"), {"source": "bench-dataset"})
        cur.execute(INVOICE_LINES_SQL)
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM (ANALYZE)")
    harness._admin([f"COMMENT ON DATABASE \"{make_url(url).database}\" IS '{key}'"])
    return url, time.perf_counter() - started


# ---------------------------------------------------------------- the day of activity
RESET_SQL = [
    "DELETE FROM app.supplier_invoice_lines WHERE invoice_number LIKE 'DAY-%'",
    "DELETE FROM app.supplier_invoices WHERE invoice_number LIKE 'DAY-%'",
    "DELETE FROM app.payments WHERE payment_id LIKE 'DAY-%'",
    "DELETE FROM app.price_lines WHERE line_id = 'DAY-SUPPLEMENT'",
    """UPDATE app.dossiers d SET status = b.status, sale_total = b.sale_total, updated_at = b.updated_at,
           version = b.version
       FROM public.bench_day_before b WHERE b.dossier_number = d.dossier_number""",
    """UPDATE app.services s SET status = 'confirmed'
       FROM public.bench_day_before b WHERE b.dossier_number = s.dossier_number AND b.status = 'confirmed'
         AND s.status = 'cancelled'""",
    "DROP TABLE IF EXISTS public.bench_day_before",
]

DAY_SQL = [
    # The dossiers the day changes: saved first, so the next run can put them back.
    """CREATE TABLE public.bench_day_before AS
       SELECT dossier_number, status, sale_total, updated_at, version,
              row_number() OVER (ORDER BY md5(dossier_number || 'day')) AS n
       FROM app.dossiers WHERE status = 'confirmed' AND departure_date > %(day)s
       ORDER BY md5(dossier_number || 'day') LIMIT %(changed)s""",
    # 9 in 10: a supplement (a modification line) and its card payment.
    """INSERT INTO app.price_lines (dossier_number, service_id, line_id, origin, label, quantity, unit_sale_amount,
           sale_currency, unit_purchase_amount, purchase_currency, vat_rate, supplier_code, created_at)
       SELECT b.dossier_number, 'S1', 'DAY-SUPPLEMENT', 'modification', 'Room upgrade', 1, 80, d.currency, 60,
              d.currency, 0, s.supplier_code, %(now)s
       FROM public.bench_day_before b JOIN app.dossiers d USING (dossier_number)
       JOIN app.services s ON s.dossier_number = b.dossier_number AND s.service_id = 'S1'
       WHERE b.n %% 10 <> 0""",
    """INSERT INTO app.payments (payment_id, dossier_number, received_at, method, amount, currency, status, provider)
       SELECT 'DAY-' || b.dossier_number, b.dossier_number, %(now)s, 'card', 80, d.currency, 'captured', 'adyen'
       FROM public.bench_day_before b JOIN app.dossiers d USING (dossier_number) WHERE b.n %% 10 <> 0""",
    """UPDATE app.dossiers d SET sale_total = d.sale_total + 80, updated_at = %(now)s, version = d.version + 1
       FROM public.bench_day_before b WHERE b.dossier_number = d.dossier_number AND b.n %% 10 <> 0""",
    # 1 in 10: cancelled.
    """UPDATE app.dossiers d SET status = 'cancelled', updated_at = %(now)s, version = d.version + 1
       FROM public.bench_day_before b WHERE b.dossier_number = d.dossier_number AND b.n %% 10 = 0""",
    """UPDATE app.services s SET status = 'cancelled'
       FROM public.bench_day_before b WHERE b.dossier_number = s.dossier_number AND b.n %% 10 = 0""",
]

DAY_INVOICES_SQL = """
CREATE TEMP TABLE invoiced AS
SELECT s.dossier_number, s.service_id, s.supplier_code, s.supplier_reference, pl.currency, pl.amount,
       d.created_at, t.last_name, abs(hashtext(s.dossier_number || s.service_id)) %% 100 AS bucket,
       %(day)s::date AS invoice_date
FROM app.services s
JOIN app.dossiers d USING (dossier_number)
JOIN (SELECT dossier_number, service_id, min(purchase_currency) AS currency,
             sum(unit_purchase_amount * quantity) AS amount
      FROM app.price_lines GROUP BY dossier_number, service_id) pl USING (dossier_number, service_id)
JOIN app.travellers t ON t.dossier_number = s.dossier_number AND t.traveller_id = 'T1'
WHERE s.status = 'confirmed' AND abs(hashtext(s.dossier_number || s.service_id || 'inv')) %% 100 >= 88
ORDER BY md5(s.dossier_number || s.service_id || 'day') LIMIT %(changed)s
"""


def _reset_day(url: str) -> None:
    with search._psycopg(url) as conn, conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        cur.execute("SELECT to_regclass('public.bench_day_before') IS NOT NULL")
        if cur.fetchone()[0]:
            for statement in RESET_SQL:
                cur.execute(statement)
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM (ANALYZE) app.dossiers, app.services, app.price_lines, app.payments")


def _add_day(url: str, changed: int) -> dict[str, int]:
    """The day's activity; returns what it added."""
    from datetime import UTC, datetime

    now = datetime.combine(DAY, datetime.min.time(), UTC) + timedelta(hours=9)
    params = {"day": DAY, "now": now, "changed": changed}
    with search._psycopg(url) as conn, conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        for statement in DAY_SQL:
            cur.execute(statement, params)
        cur.execute(DAY_INVOICES_SQL, params)
        cur.execute(
            """CREATE TEMP TABLE invoiced_numbered AS
               SELECT *, 'DAY-' || supplier_code || '-' || currency AS invoice_number FROM invoiced"""
        )
        cur.execute(INVOICES_SQL.replace(":source", "%(source)s"), {"source": "bench-day"})
        cur.execute(INVOICE_LINES_SQL)
        cur.execute(
            """SELECT (SELECT count(*) FROM public.bench_day_before),
                      (SELECT count(*) FROM app.payments WHERE payment_id LIKE 'DAY-%%'),
                      (SELECT count(*) FROM app.supplier_invoices WHERE invoice_number LIKE 'DAY-%%'),
                      (SELECT count(*) FROM app.supplier_invoice_lines WHERE invoice_number LIKE 'DAY-%%')"""
        )
        dossiers, payments, invoices, lines = cur.fetchone()
        conn.commit()
        conn.autocommit = True
        cur.execute("ANALYZE app.dossiers, app.services, app.price_lines, app.payments, app.supplier_invoice_lines")
    return {"dossiers": dossiers, "payments": payments, "invoices": invoices, "lines": lines}


# ---------------------------------------------------------------- dbt
def dbt(args: list[str], url: str, target: Path) -> tuple[float, list[dict]]:
    """`dbt <args>` as dbt_runner runs it, in the target directory `target`; wall time and run_results' nodes."""
    target.mkdir(parents=True, exist_ok=True)
    results = target / "run_results.json"
    results.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = run_dbt_process(args, url, target)
    took = time.perf_counter() - started
    nodes = json.loads(results.read_text())["results"] if results.exists() else []
    if proc.returncode != 0:
        bad = [
            f"{r['unique_id']}: {(r.get('message') or r['status']).strip()}"
            for r in nodes
            if r["status"] in ("error", "fail", "runtime error")
        ]
        raise RuntimeError(f"dbt {' '.join(args)} failed: {'; '.join(bad) or proc.stdout[-2000:]}")
    return took, nodes


def split(wall: float, nodes: list[dict]) -> str:
    """Where the wall time went: node time by kind (count), and what is left (parse, start, dbt's own work)."""
    kinds: dict[str, list[float]] = {}
    for r in nodes:
        kinds.setdefault(r["unique_id"].split(".")[0], []).append(r.get("execution_time") or 0)
    parts = [f"{k}s {sum(v):.1f} s ({len(v)})" for k, v in sorted(kinds.items(), key=lambda kv: -sum(kv[1]))]
    rest = wall - sum(sum(v) for v in kinds.values())
    return "Time by kind of node (count): " + ", ".join(parts) + f"; outside the nodes (parse, start-up) {rest:.1f} s."


def slowest(nodes: list[dict], count: int = 10) -> list[str]:
    ranked = sorted(nodes, key=lambda r: r.get("execution_time") or 0, reverse=True)[:count]
    return [f"{r['unique_id'].replace('backoffice.', '')} {r['execution_time']:.1f} s" for r in ranked]


def _counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                name: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                if conn.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}).scalar_one()
                else 0
                for name, table in (
                    ("services", "app.services"),
                    ("price lines", "app.price_lines"),
                    ("travellers", "app.travellers"),
                    ("payments", "app.payments"),
                    ("supplier invoices", "app.supplier_invoices"),
                    ("invoice lines", "app.supplier_invoice_lines"),
                    ("journal lines", "marts.accounting_entries"),
                )
            }
    finally:
        engine.dispose()


def _matches(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT state, count(*) FROM marts.supplier_invoice_line_matches GROUP BY 1 ORDER BY 1")
            ).all()
    except sa.exc.DBAPIError:
        return "?"
    finally:
        engine.dispose()
    return ", ".join(f"{s} {c:,}" for s, c in rows)


def measure(scale: harness.Scale, narrow: tuple[str, ...] = ()) -> list[Figure]:
    """Both builds' figures on this scale's dataset, then the accountants' searches on what they built
    (bench/accounting.py); `narrow` (tests only): dbt arguments narrowing both builds."""
    n = DOSSIERS[scale.name]
    url, built = dataset(scale)
    target = harness.DATA_ROOT / scale.name / "dbt_target"
    _reset_day(url)
    full_s, full_nodes = dbt([*BUILD_ARGS[:1], "--full-refresh", *BUILD_ARGS[1:], *narrow], url, target)
    counts = _counts(url)
    matches = _matches(url)
    added = _add_day(url, DAY_CHANGED[scale.name])
    daily_s, daily_nodes = dbt([*BUILD_ARGS, *narrow], url, target)
    searches = accounting.measure(url, n, f"python -m bench --scale {scale.name} --only dbt")
    threads = os.environ.get("BACKOFFICE_DBT_THREADS", "1")
    made = f"built for this run in {built:.0f} s" if built is not None else "reused from an earlier run"
    shape = ", ".join(f"{v:,} {k}" for k, v in counts.items() if k != "journal lines")
    about_full = (
        f"{n:,} dossiers ({made}; {shape}; docstring of bench/dbt_build.py for how). Measured: wall time of "
        f"`dbt build --full-refresh --exclude-resource-type unit_test` of the whole project (seeds, every model, "
        f"every data test; the unit tests run in `make test`, not in production builds), run as "
        f"backoffice.dbt_runner runs it ({threads} dbt thread(s), BACKOFFICE_DBT_THREADS), parse included. "
        f"It wrote {counts['journal lines']:,} journal lines; matches by status: {matches}. "
        f"Reproduce: `python -m bench --scale {scale.name} --only dbt`."
    )
    about_daily = (
        f"After the full build, one day of activity ({added['dossiers']:,} dossiers changed: supplements with "
        f"{added['payments']:,} card payments, a tenth cancelled; {added['invoices']:,} supplier invoices with "
        f"{added['lines']:,} lines for services that had none), then `dbt build --exclude-resource-type unit_test` "
        "with no selection, as the Dagster job runs it (assets/dbt.py BUILD_ARGS): views replaced, the matching's "
        "per-dossier tables incremental (the dossiers the day changed, from app.matching_changes), the "
        "candidates and cost tables rebuilt, accounting_entries incremental (new records only), every data test. "
        f"Reproduce: `python -m bench --scale {scale.name} --only dbt`."
    )
    return [
        Figure(
            f"dbt: full build, {n:,} dossiers",
            f"<= {FULL_TARGET_S:.0f} s",
            f"{full_s:.0f} s",
            f"{full_s / FULL_TARGET_S:.2f}",
            full_s <= FULL_TARGET_S,
            about_full,
            [
                "10 slowest nodes (run_results.json): " + "; ".join(slowest(full_nodes)) + ".",
                split(full_s, full_nodes),
            ],
        ),
        Figure(
            f"dbt: daily incremental build, {n:,} dossiers",
            f"<= {DAILY_TARGET_S:.0f} s",
            f"{daily_s:.0f} s",
            f"{daily_s / DAILY_TARGET_S:.2f}",
            daily_s <= DAILY_TARGET_S,
            about_daily,
            [
                "10 slowest nodes (run_results.json): " + "; ".join(slowest(daily_nodes)) + ".",
                split(daily_s, daily_nodes),
            ],
        ),
        searches,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dbt_build", description="the dbt build figures alone")
    parser.add_argument("--scale", choices=sorted(DOSSIERS), default="small")
    args = parser.parse_args()
    for figure in measure(harness.SCALES[args.scale]):
        print(f"{figure.name}: {figure.measured}")
        print("\n".join(figure.details))


if __name__ == "__main__":
    main()
