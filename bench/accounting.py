"""The accountants' document searches on the dbt dataset, after its daily build.

A fixed mix of supplier invoice searches (every invoice, by billing status, one supplier, a month,
a dossier number, credit notes, by amount) and the client documents, each run `REPEATS` times
through `backoffice.queries.accounting_search.search_documents` as the Streamlit page calls it;
the figure is the p95 of every run. Measured right after the daily build, so the build's copies
(intermediate.int_search__*) are fresh and the change log empty: the common case of a working
day. Our target, as for the agents' Liste page: under a second.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

import sqlalchemy as sa

from backoffice.queries import accounting_search as a
from bench import search
from bench.report import Figure

TARGET_S = 1.0
REPEATS = 3


def _mix(conn: sa.Connection) -> list[tuple[str, str, a.DocumentCriteria, str]]:
    supplier = conn.execute(sa.text("SELECT min(supplier_code) FROM app.supplier_invoices")).scalar() or "NONE"
    dossier = conn.execute(
        sa.text("SELECT min(dossier_number) FROM intermediate.int_search__invoice_dossiers")
        if conn.execute(sa.text("SELECT to_regclass('intermediate.int_search__invoice_dossiers')")).scalar()
        else sa.text("SELECT min(dossier_number) FROM app.dossiers")
    ).scalar()
    month = search.TODAY.replace(day=1)
    supplier_invoices = a.SUPPLIER_INVOICES
    return [
        ("every supplier invoice", supplier_invoices, a.DocumentCriteria(), "document_date"),
        ("over-invoiced", supplier_invoices, a.DocumentCriteria(billing_statuses=("over_invoiced",)), "document_date"),
        (
            "partially or not invoiced",
            supplier_invoices,
            a.DocumentCriteria(billing_statuses=("partially_invoiced", "not_invoiced")),
            "document_date",
        ),
        ("one supplier", supplier_invoices, a.DocumentCriteria(party=supplier), "document_date"),
        (
            "a month",
            supplier_invoices,
            a.DocumentCriteria(date_from=month - timedelta(days=31), date_to=month),
            "document_date",
        ),
        ("a dossier number", supplier_invoices, a.DocumentCriteria(dossier_number=dossier), "document_date"),
        ("credit notes", supplier_invoices, a.DocumentCriteria(kinds=("credit_note",)), "document_date"),
        ("by amount", supplier_invoices, a.DocumentCriteria(), "amount"),
        ("client documents", a.CLIENT_DOCUMENTS, a.DocumentCriteria(), "document_date"),
    ]


def measure(url: str, dossiers: int, reproduce: str) -> Figure:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            mix = _mix(conn)
            copies = a.reads_build_copies(conn)
        runs: dict[str, list[float]] = {}
        shown: dict[str, int] = {}
        for name, scope, criteria, sort in mix:
            for _ in range(REPEATS):
                with engine.connect() as conn:
                    started = time.perf_counter()
                    rows = a.search_documents(conn, scope, criteria, sort)
                    runs.setdefault(name, []).append(time.perf_counter() - started)
                shown[name] = sum(len(r.dossiers) for r in rows)
    finally:
        engine.dispose()
    every = sorted(t for ts in runs.values() for t in ts)
    p95 = every[min(len(every) - 1, round(0.95 * (len(every) - 1)))]
    read = "the build's copies with the live views for what changed since" if copies else "the live views whole"
    return Figure(
        f"Accountants' document searches p95, {dossiers:,} dossiers",
        f"< {TARGET_S:.0f} s",
        f"{p95 * 1000:.0f} ms",
        f"{p95 / TARGET_S:.2f}",
        p95 < TARGET_S,
        f"{len(mix)} searches x {REPEATS} runs through `search_documents` (a page of at most {a.MAX_ROWS} "
        f"documents with each one's dossiers and their billing status), after the daily build; statuses read "
        f"from {read}. Reproduce: `{reproduce}`.",
        [
            "Median per search (dossier statuses shown): "
            + "; ".join(f"{name} {statistics.median(ts) * 1000:.0f} ms ({shown[name]:,})" for name, ts in runs.items())
            + "."
        ],
    )
