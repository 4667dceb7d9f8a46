"""The reconciliation workbench at the size of a bad month: 100,000 open supplier invoice lines.

Data, written set-based: `dossiers` dossiers of one supplier (a hotel service, a booking line of
800.00, one traveller whose last name is unique), `open_lines` invoice lines whose reference names
nothing (unmatched) and `suggested` lines whose reference is a traveller's last name alone and
whose amount is no open amount: one clue that does not decide, so matching only suggests them.
dbt then builds the matching (`+supplier_invoice_line_matches`, `+supplier_billing_status`).

Timed, as the page runs them: the first page of the workbench filtered on the supplier and on
open lines, and a page deep in the set (keyset); then `bulk_confirm` of the suggested lines.
"""

from __future__ import annotations

import statistics
import time
import uuid

import sqlalchemy as sa

from backoffice.domain.permissions import Actor
from backoffice.queries import reconciliation as workbench
from backoffice.services import reconciliation
from backoffice.services.unit_of_work import UnitOfWork
from bench import harness
from bench.report import Figure

SUPPLIER = "HOTBENCH"
PAGE_TARGET_S = 1.0
BULK_TARGET_S = 10.0
# (open lines, suggested lines) per scale; the figures are stated for 100,000 and 10,000.
COUNTS = {"tiny": (2_000, 200)}
DEFAULT_COUNTS = (100_000, 10_000)
ACTOR = Actor("bench", "accountant", frozenset({"reconcile", "write_off"}))
PAGE_RUNS = 20

# A number written with letters only, so that it reads as a name (0 -> a, 1 -> b ...).
_NAME = "translate(lpad(i::text, 6, '0'), '0123456789', 'abcdefghij')"


def load_lines(engine: sa.Engine, url: str, open_lines: int, suggested: int, billing: bool = True) -> None:
    """Write the dossiers and invoice lines described above, then build the matching with dbt
    (and the billing status, which needs the seeds, when `billing`)."""
    from backoffice.dbt_runner import run_dbt

    dossiers = f"SELECT i, 'BK-2098-' || lpad(i::text, 6, '0') AS n FROM generate_series(1, {suggested}) AS i"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.suppliers (supplier_code, name, country, currency, ledger_account)
                   VALUES (:s, 'Hotel bench', 'FR', 'EUR', '401BENCH')"""
            ),
            {"s": SUPPLIER},
        )
        conn.execute(
            sa.text(
                f"""INSERT INTO app.dossiers (dossier_number, platform_version, status, channel, brand, currency,
                        departure_date, return_date, destination, destination_country, client_id, client_first_name,
                        client_last_name, sale_total, created_at, updated_at)
                    SELECT n, 1, 'confirmed', 'web', 'Soleil', 'EUR', DATE '2026-03-01', DATE '2026-03-08',
                           'Lisbonne', 'PT', 'C-' || n, 'Paul', 'Client', 1000.00, TIMESTAMPTZ '2026-01-05', now()
                    FROM ({dossiers}) x"""
            )
        )
        conn.execute(
            sa.text(
                f"""INSERT INTO app.services (dossier_number, service_id, kind, supplier_code, label, start_date,
                        end_date, status)
                    SELECT n, 'S1', 'hotel', :s, 'Hotel Miramar', DATE '2026-03-01', DATE '2026-03-08', 'confirmed'
                    FROM ({dossiers}) x"""
            ),
            {"s": SUPPLIER},
        )
        conn.execute(
            sa.text(
                f"""INSERT INTO app.price_lines (dossier_number, service_id, line_id, origin, booking_version, label,
                        quantity, unit_sale_amount, sale_currency, unit_purchase_amount, purchase_currency, vat_rate,
                        supplier_code)
                    SELECT n, 'S1', 'L1', 'booking', 1, 'Double room', 1, 1000.00, 'EUR', 800.00, 'EUR', 0.10, :s
                    FROM ({dossiers}) x"""
            ),
            {"s": SUPPLIER},
        )
        conn.execute(
            sa.text(
                f"""INSERT INTO app.travellers (dossier_number, traveller_id, first_name, last_name, kind)
                    SELECT n, 'T1', 'Paul', 'Zq' || {_NAME}, 'adult' FROM ({dossiers}) x"""
            )
        )
        # One invoice per 10 lines, dated through March; amounts vary so that range filters mean something.
        total = open_lines + suggested
        conn.execute(
            sa.text(
                """INSERT INTO app.supplier_invoices (supplier_code, invoice_number, kind, invoice_date, currency,
                        sha256, source_file)
                   SELECT :s, 'FB-' || lpad(i::text, 6, '0'), 'invoice', DATE '2026-03-10' + (i % 20), 'EUR',
                          md5(i::text), 'bench'
                   FROM generate_series(0, (:total - 1) / 10) AS i"""
            ),
            {"s": SUPPLIER, "total": total},
        )
        conn.execute(
            sa.text(
                f"""INSERT INTO app.supplier_invoice_lines (supplier_code, invoice_number, line_number, reference,
                        description, amount_excl_tax, vat_rate, amount_incl_tax)
                    SELECT :s, 'FB-' || lpad((i / 10)::text, 6, '0'), i % 10 + 1,
                           CASE WHEN i < :suggested THEN 'ZQ' || upper({_NAME.replace("i::text", "(i + 1)::text")})
                                ELSE 'REF ' || md5(i::text) END,
                           'Nuitees', 100.00 + (i % 500), 0, 100.00 + (i % 500)
                    FROM generate_series(0, :total - 1) AS i"""
            ),
            {"s": SUPPLIER, "total": total, "suggested": suggested},
        )
    if billing:
        run_dbt(["seed"], url)
    models = ["+supplier_invoice_line_matches", *(["+supplier_billing_status"] if billing else [])]
    run_dbt(["run", "--select", *models], url)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))


def _page_times(engine: sa.Engine, filters: workbench.Filters) -> tuple[list[float], list[float]]:
    first: list[float] = []
    deep: list[float] = []
    with engine.connect() as conn:
        page = workbench.read_page(conn, filters)
        for _ in range(10):  # walk into the set: the keyset of the 10th page
            page = workbench.read_page(conn, filters, after=page.next_after)
        after = page.next_after
        for _ in range(PAGE_RUNS):
            started = time.perf_counter()
            workbench.read_page(conn, filters)
            first.append(time.perf_counter() - started)
            started = time.perf_counter()
            workbench.read_page(conn, filters, after=after)
            deep.append(time.perf_counter() - started)
    return first, deep


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def measure(scale: harness.Scale, url: str) -> list[Figure]:
    open_lines, suggested = COUNTS.get(scale.name, DEFAULT_COUNTS)
    harness.empty_database(url)
    engine = sa.create_engine(url)
    try:
        started = time.perf_counter()
        load_lines(engine, url, open_lines, suggested)
        load_s = time.perf_counter() - started
        filters = workbench.Filters(supplier_code=SUPPLIER, states=workbench.OPEN_STATES)
        first, deep = _page_times(engine, filters)
        page_p95 = max(_p95(first), _p95(deep))
        bulk_filters = workbench.Filters(supplier_code=SUPPLIER, states=("suggested",))
        with engine.connect() as conn:
            count = workbench.count_suggestions(conn, bulk_filters)
        with UnitOfWork(engine) as uow:
            started = time.perf_counter()
            confirmed = reconciliation.bulk_confirm(
                uow, ACTOR, filters=bulk_filters, expected_count=count, idempotency_key=uuid.uuid4().hex
            )
            bulk_s = time.perf_counter() - started
    finally:
        engine.dispose()
    about = (
        f"{open_lines:,} unmatched and {suggested:,} suggested lines of one supplier (written set-based, matching "
        f"built by dbt in {load_s:.0f} s). Page: `backoffice.queries.reconciliation.read_page`, 50 open lines "
        f"(states suggested/unmatched/rejected) filtered on the supplier, first page and the 11th page (keyset), "
        f"{PAGE_RUNS} runs each; p95 of the slower."
    )
    return [
        Figure(
            "Reconciliation: workbench page",
            f"p95 < {PAGE_TARGET_S:.0f} s",
            f"{page_p95 * 1000:.0f} ms",
            f"{page_p95 / PAGE_TARGET_S:.3f}",
            page_p95 < PAGE_TARGET_S,
            about,
            [f"first page p95 {_p95(first) * 1000:.0f} ms, 11th page p95 {_p95(deep) * 1000:.0f} ms"],
        ),
        Figure(
            "Reconciliation: bulk confirm",
            f"{suggested:,} suggestions < {BULK_TARGET_S:.0f} s",
            f"{bulk_s:.2f} s",
            f"{bulk_s / BULK_TARGET_S:.3f}",
            bulk_s < BULK_TARGET_S and confirmed == suggested,
            "`backoffice.services.reconciliation.bulk_confirm` of the supplier's suggested lines (count shown "
            "first, then confirmed): decisions and one audit event per line plus one for the batch, set-based, "
            f"one transaction, commit included. Confirmed {confirmed:,} of {count:,} counted.",
        ),
    ]
