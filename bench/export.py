"""The accounting export's two targets: a day of 100,000 journal entries exported and checked within
10 s, and a fiscal year's FEC of 10 million lines (1 million at `--scale small`) within 500 MB of
peak memory.

The entries are synthetic but shaped like the real journal: written by SQL straight into
marts.accounting_entries (created empty by dbt first), the table the export reads. Per 20 entries:
7 sales (VE: client 411 debit incl. VAT, 706 credit, 44571 VAT credit), 7 purchases (AC: 604 and
44566 debit, supplier 401 credit), 5 bank receipts (BQ: 512 debit, client 411 credit) and 1
miscellaneous (OD: 2 lines); about 2.7 lines an entry, each entry balanced, numbers continuous per
journal and year, validation times spread through the day (or the year), amounts varied.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import median

import sqlalchemy as sa

from bench import harness
from bench.report import Figure

DAY = date(2026, 3, 14)
YEAR = 2025
DAY_TARGET_S = 10.0
YEAR_TARGET_BYTES = 500 * 1024 * 1024
DAY_ENTRIES = {"tiny": 2_000}
DEFAULT_DAY_ENTRIES = 100_000
YEAR_LINES = {"tiny": 20_000, "small": 1_000_000, "medium": 1_000_000, "full": 10_000_000}
LINES_PER_ENTRY = 2.7  # 7 x 3 + 7 x 3 + 5 x 2 + 1 x 2 lines per 20 entries

# :n entries, the i-th validated at :start + (i - 1) * :step; numbered after any number already
# given in the journal's year (there is none: each dataset has a year of its own).
_GENERATE = sa.text(
    """
    WITH e AS (
        SELECT i,
               CASE WHEN i % 20 < 7 THEN 'VE' WHEN i % 20 < 14 THEN 'AC' WHEN i % 20 < 19 THEN 'BQ' ELSE 'OD' END AS j,
               CAST(:start AS timestamptz) + (i - 1) * CAST(:step AS interval) AS at,
               round(10 + (i::bigint * 7919 % 250000) / 100.0, 2) AS ht
        FROM generate_series(1, :n) AS i
    ),
    n AS (
        SELECT e.*, row_number() OVER (PARTITION BY j ORDER BY i) AS num,
               round(ht * 1.20, 2) AS ttc, (at AT TIME ZONE 'Europe/Paris')::date AS d
        FROM e
    )
    INSERT INTO marts.accounting_entries (journal_code, entry_number, entry_date, account, aux_account,
        account_label, piece_ref, piece_date, label, debit, credit, currency_amount, currency, validated_at,
        source_type, source_id, dossier_number)
    SELECT n.j, n.num, n.d, l.account, l.aux, l.account_label, n.j || '-' || n.num, n.d, l.label,
           l.debit, l.credit, greatest(l.debit, l.credit), 'EUR', n.at, 'bench', n.j || '/' || n.i,
           'BK-BENCH-' || lpad((n.i % 50000)::text, 6, '0')
    FROM n CROSS JOIN LATERAL (VALUES
        ('VE', '411000', 'C' || lpad((n.i % 5000)::text, 5, '0'), 'Clients', 'Facture client ' || n.i, n.ttc, 0.00),
        ('VE', '706000', NULL, 'Prestations de services', 'Facture client ' || n.i, 0.00, n.ht),
        ('VE', '445710', NULL, 'TVA collectée', 'Facture client ' || n.i, 0.00, n.ttc - n.ht),
        ('AC', '604000', NULL, 'Achats de prestations', 'Facture fournisseur ' || n.i, n.ht, 0.00),
        ('AC', '445660', NULL, 'TVA déductible', 'Facture fournisseur ' || n.i, n.ttc - n.ht, 0.00),
        ('AC', '401000', 'F' || lpad((n.i % 300)::text, 4, '0'), 'Fournisseurs', 'Facture fournisseur ' || n.i,
         0.00, n.ttc),
        ('BQ', '512000', NULL, 'Banque', 'Règlement client ' || n.i, n.ttc, 0.00),
        ('BQ', '411000', 'C' || lpad((n.i % 5000)::text, 5, '0'), 'Clients', 'Règlement client ' || n.i, 0.00, n.ttc),
        ('OD', '658000', NULL, 'Charges diverses', 'Écart de règlement ' || n.i, n.ht, 0.00),
        ('OD', '471000', NULL, 'Compte d''attente', 'Écart de règlement ' || n.i, 0.00, n.ht)
    ) AS l (journal, account, aux, account_label, label, debit, credit)
    WHERE l.journal = n.j
    """
)


def _generate(engine: sa.Engine, entries: int, start: datetime, span: timedelta) -> int:
    with engine.begin() as conn:
        conn.execute(_GENERATE, {"n": entries, "start": start, "step": span / entries})
        conn.execute(sa.text("ANALYZE marts.accounting_entries"))
        return conn.execute(sa.text("SELECT count(*) FROM marts.accounting_entries")).scalar_one()


def _prepare(url: str) -> sa.Engine:
    """Empty app/raw/audit, create marts.accounting_entries with dbt (empty on empty sources), empty it."""
    from backoffice.dbt_runner import run_dbt

    harness.empty_database(url)
    run_dbt(
        ["build", "--select", "+accounting_entries", "--resource-type", "seed", "--resource-type", "model"],
        database_url=url,
    )
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE marts.accounting_entries"))
    return engine


def _forget_exports(engine: sa.Engine) -> None:
    """Undo an export between runs (TRUNCATE: the tables' immutability triggers guard rows, not this)."""
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE app.exported_entries, app.accounting_exports"))
        conn.execute(sa.text("UPDATE marts.accounting_entries SET exported_in = NULL WHERE exported_in IS NOT NULL"))


def _day(scale: harness.Scale, engine: sa.Engine) -> Figure:
    from backoffice.export.delivery import LocalDirectory
    from backoffice.services.exports import SYSTEM_EXPORTER, export_day
    from backoffice.services.unit_of_work import UnitOfWork

    entries = DAY_ENTRIES.get(scale.name, DEFAULT_DAY_ENTRIES)
    start = datetime(DAY.year, DAY.month, DAY.day, 6, 0, tzinfo=UTC)
    lines = _generate(engine, entries, start, timedelta(hours=14))
    runs, cpu, aside = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as out:
        for _ in range(scale.repeats):
            _forget_exports(engine)
            started, started_cpu, started_aside = time.perf_counter(), time.process_time(), _children_cpu()
            with UnitOfWork(engine) as uow:
                result = export_day(uow, SYSTEM_EXPORTER, DAY, LocalDirectory(Path(out)))
            runs.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
            aside.append(_children_cpu() - started_aside)
            if result.entries != entries or result.lines != lines:
                raise RuntimeError(f"the export carried {result.entries:,} entries, {result.lines:,} lines")
        sizes = ", ".join(f"{name} {meta['bytes'] / 1e6:.1f} MB" for name, meta in result.files.items())
    took = median(runs)
    about = (
        f"{entries:,} synthetic entries ({lines:,} lines, four journals, balanced) validated on one day, written "
        "straight into marts.accounting_entries. Measured: `export_day` as the scheduler runs it, delivering "
        "to a local folder: select and sort the day's never-exported entries, write the FEC, check it "
        "(every Test Compta Demat rule) while a forked process writes the CSV and Parquet, hash, record the "
        "export and one app.exported_entries row per entry, mark marts.accounting_entries.exported_in, deliver, "
        "commit. "
        "Each run starts from the un-exported day."
    )
    details = [
        f"Runs (s): {', '.join(f'{t:.2f}' for t in runs)}; of which CPU time of this Python process (s): "
        f"{', '.join(f'{t:.2f}' for t in cpu)}, and of the process writing the CSV and Parquet beside it (s): "
        f"{', '.join(f'{t:.2f}' for t in aside)} (the rest is PostgreSQL's work and waiting for a core on a "
        f"busy machine: compare with the load average below). Files: {sizes}."
    ]
    return Figure(
        f"Export: a day of {entries:,} entries",
        f"<= {DAY_TARGET_S:.0f} s",
        f"{took:.2f} s",
        f"{took / DAY_TARGET_S:.2f}",
        took <= DAY_TARGET_S,
        about,
        details,
    )


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the export's companion writer)."""
    times = os.times()
    return times.children_user + times.children_system


def _year_child(url: str, year: int, out: str) -> tuple[int, str, str, float, int]:
    """In a fresh process: the year's FEC, streamed and checked; returns lines, totals, seconds, bytes."""
    from backoffice.export.fec import FecFormat
    from backoffice.services.exports import fiscal_year_fec

    engine = sa.create_engine(url)
    try:
        started = time.perf_counter()
        with engine.connect() as conn:
            made = fiscal_year_fec(conn, year, FecFormat(), Path(out))
        took = time.perf_counter() - started
    finally:
        engine.dispose()
    return made.lines, str(made.debit), str(made.credit), took, Path(out).stat().st_size


def _year(scale: harness.Scale, engine: sa.Engine, url: str) -> Figure:
    wanted = YEAR_LINES.get(scale.name, YEAR_LINES["full"])
    entries = round(wanted / LINES_PER_ENTRY)
    before = _count(engine)
    lines = _generate(engine, entries, datetime(YEAR, 1, 1, 6, 0, tzinfo=UTC), timedelta(days=364)) - before
    with tempfile.TemporaryDirectory(prefix="bench-year-") as out:
        (written, debit, credit, took, size), peak = harness.in_child(
            _year_child, url, YEAR, str(Path(out) / f"000000000FEC{YEAR}1231.txt")
        )
    if written != lines or debit != credit:
        raise RuntimeError(f"the year FEC has {written:,} lines of {lines:,}, debit {debit}, credit {credit}")
    about = (
        f"{entries:,} synthetic entries ({lines:,} lines) spread over fiscal year {YEAR}, same shape as above. "
        "Measured: the peak resident memory (VmHWM) of a fresh process running `fiscal_year_fec`: a "
        "server-side cursor streamed through the FEC writer into the file, then the whole file checked "
        "line by line, then renamed into place; the process's own start-up (Python, SQLAlchemy, pyarrow) "
        "is included."
    )
    details = [f"{size / 1e6:,.0f} MB written and checked in {took:.1f} s; debit = credit = {debit}."]
    return Figure(
        f"Export: year FEC of {lines:,} lines, peak memory",
        "<= 500 MB",
        f"{peak / 1024 / 1024:.0f} MB",
        f"{peak / YEAR_TARGET_BYTES:.2f}",
        peak <= YEAR_TARGET_BYTES,
        about,
        details,
    )


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM marts.accounting_entries")).scalar_one()


def measure(scale: harness.Scale, url: str) -> list[Figure]:
    engine = _prepare(url)
    try:
        return [_day(scale, engine), _year(scale, engine, url)]
    finally:
        engine.dispose()
