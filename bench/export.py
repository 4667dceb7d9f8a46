"""The accounting export's two targets: a day of 100,000 journal entries exported and checked within
10 s, and a fiscal year's FEC of 10 million lines (1 million at `--scale small`; any size with
BENCH_EXPORT_YEAR_LINES=10000000) within 500 MB of peak memory. A year of 2 million lines or more is
generated once into a database of its own and kept for later runs (`year_dataset`).

The entries are synthetic but shaped like the real journal: written by SQL straight into
marts.accounting_entries (created empty by dbt first), the table the export reads. Per 20 entries:
7 sales (VE: client 411 debit incl. VAT, 706 credit, 44571 VAT credit), 7 purchases (AC: 604 and
44566 debit, supplier 401 credit), 5 bank receipts (BQ: 512 debit, client 411 credit) and 1
miscellaneous (OD: 2 lines); about 2.7 lines an entry, each entry balanced, numbers continuous per
journal and year, validation times spread through the day (or the year), amounts varied.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import median

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench import harness
from bench.report import Figure

DAY = date(2026, 3, 14)
YEAR = 2025
DAY_TARGET_S = 10.0
YEAR_TARGET_BYTES = 500 * 1024 * 1024
DAY_ENTRIES = {"tiny": 2_000}
DEFAULT_DAY_ENTRIES = 100_000
YEAR_LINES = {"tiny": 20_000, "small": 1_000_000, "medium": 1_000_000, "full": 10_000_000}
YEAR_LINES_ENV = "BENCH_EXPORT_YEAR_LINES"  # overrides the scale's year size
CACHED_FROM = 2_000_000  # a year this large is generated once into a database of its own, and kept
LINES_PER_ENTRY = 2.7  # 7 x 3 + 7 x 3 + 5 x 2 + 1 x 2 lines per 20 entries

# Entries :first to :first + :n - 1 of a dataset, the i-th validated at :start + (i - 1) * :step.
# Entry i's number in its journal is the count of the journal's entries up to i, in closed form (so a
# large dataset is generated in chunks, set-based, each chunk numbered on from the previous one):
# each journal has a fixed set of residues of i mod 20. Each dataset has a fiscal year of its own.
_GENERATE = sa.text(
    """
    WITH e AS (
        SELECT i,
               CASE WHEN i % 20 < 7 THEN 'VE' WHEN i % 20 < 14 THEN 'AC' WHEN i % 20 < 19 THEN 'BQ' ELSE 'OD' END AS j,
               CAST(:start AS timestamptz) + (i - 1) * CAST(:step AS interval) AS at,
               round(10 + (i::bigint * 7919 % 250000) / 100.0, 2) AS ht
        FROM generate_series(CAST(:first AS bigint), CAST(:first AS bigint) + :n - 1) AS i
    ),
    n AS (
        SELECT e.*,
               CASE j WHEN 'VE' THEN 7 * (i / 20) + least(i % 20, 6)
                      WHEN 'AC' THEN 7 * (i / 20) + greatest(0, least(i % 20, 13) - 6)
                      WHEN 'BQ' THEN 5 * (i / 20) + greatest(0, least(i % 20, 18) - 13)
                      ELSE i / 20 + greatest(0, i % 20 - 18) END AS num,
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


GENERATE_CHUNK = 500_000  # entries per INSERT: a 10-million-line year is generated in 8 statements


def _generate(engine: sa.Engine, entries: int, start: datetime, span: timedelta) -> int:
    for first in range(1, entries + 1, GENERATE_CHUNK):
        with engine.begin() as conn:
            conn.execute(
                _GENERATE,
                {"first": first, "n": min(GENERATE_CHUNK, entries - first + 1), "start": start, "step": span / entries},
            )
    with engine.begin() as conn:
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
        "to a local folder: select and sort the day's never-exported entries (one COPY into an Arrow table), "
        "write the FEC by columns, check it (every Test Compta Demat rule), write the CSV and Parquet, hash, "
        "record the export and one app.exported_entries row per entry, mark marts.accounting_entries.exported_in, "
        "deliver, commit. "
        "Each run starts from the un-exported day."
    )
    details = [
        f"Runs (s): {', '.join(f'{t:.2f}' for t in runs)}; of which CPU time of this Python process (s): "
        f"{', '.join(f'{t:.2f}' for t in cpu)} (all its threads: polars uses both cores), and of child "
        f"processes (s): {', '.join(f'{t:.2f}' for t in aside)} (the rest is PostgreSQL's work and waiting for "
        f"a core on a busy machine: compare with the load average below). Files: {sizes}."
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


def year_lines(scale: harness.Scale) -> int:
    """The year's size: `BENCH_EXPORT_YEAR_LINES` if set (e.g. 10000000 at --scale small), else the scale's."""
    wanted = os.environ.get(YEAR_LINES_ENV, "").replace("_", "").strip()
    return int(wanted) if wanted else YEAR_LINES.get(scale.name, YEAR_LINES["full"])


def _year_start() -> datetime:
    return datetime(YEAR, 1, 1, 6, 0, tzinfo=UTC)


def year_dataset(entries: int) -> tuple[str, int, float | None]:
    """A database of its own holding a year of `entries` entries and nothing else, built once and kept
    (`backoffice_bench_export_year_<entries>`, like the search figures' dataset): its URL, its line
    count and the build time (None: it was already there). Rebuilt when the migrations or the
    generating SQL change (the key is in the database's comment, written only once it is complete)."""
    name = f"export_year_{entries}"
    digest = hashlib.sha256(_GENERATE.text.encode())
    for path in sorted((harness.ROOT / "backoffice" / "db" / "migrations" / "versions").glob("*.py")):
        digest.update(path.read_bytes())
    key = json.dumps({"entries": entries, "year": YEAR, "digest": digest.hexdigest()[:16]})
    database = f"backoffice_bench_{name}"
    url = make_url(harness.server_url()).set(database=database).render_as_string(hide_password=False)
    admin = sa.create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            comment = conn.execute(
                sa.text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :name"),
                {"name": database},
            ).scalar_one_or_none()
    finally:
        admin.dispose()
    if comment == key:
        engine = sa.create_engine(url)
        try:
            return url, _count(engine), None
        finally:
            engine.dispose()
    started = time.perf_counter()
    built = harness.bench_database(name)
    engine = _prepare(built)
    try:
        lines = _generate(engine, entries, _year_start(), timedelta(days=364))
        with engine.connect() as conn:
            conn.execute(sa.text("CHECKPOINT"))
    finally:
        engine.dispose()
    harness._admin([f"COMMENT ON DATABASE \"{database}\" IS '{key}'"])
    return built, lines, time.perf_counter() - started


def _year(scale: harness.Scale, engine: sa.Engine, url: str) -> Figure:
    wanted = year_lines(scale)
    entries = round(wanted / LINES_PER_ENTRY)
    built: float | None = None
    if wanted >= CACHED_FROM:
        url, lines, built = year_dataset(entries)
    else:
        before = _count(engine)
        lines = _generate(engine, entries, _year_start(), timedelta(days=364)) - before
    with tempfile.TemporaryDirectory(prefix="bench-year-") as out:
        (written, debit, credit, took, size), peak = harness.in_child(
            _year_child, url, YEAR, str(Path(out) / f"000000000FEC{YEAR}1231.txt")
        )
    if written != lines or debit != credit:
        raise RuntimeError(f"the year FEC has {written:,} lines of {lines:,}, debit {debit}, credit {credit}")
    about = (
        f"{entries:,} synthetic entries ({lines:,} lines) spread over fiscal year {YEAR}, same shape as above. "
        "Measured: the peak resident memory (VmHWM) of a fresh process running `fiscal_year_fec`: one "
        "COPY of the year's sorted lines parsed in batches of about 4 MB into Arrow and written to the file "
        "by columns, then the whole file checked by columns in parts of about 4 MB cut between entries "
        "(any part not cleared would send the file through the line-by-line check), then renamed into place; "
        "the process's own start-up (Python, SQLAlchemy, pyarrow, polars) is included."
    )
    details = [f"{size / 1e6:,.0f} MB written and checked in {took:.1f} s; debit = credit = {debit}."]
    if wanted >= CACHED_FROM:
        details.append(
            f"The entries are kept in the database `backoffice_bench_export_year_{entries}` "
            + (f"(generated by this run in {built:.0f} s)." if built is not None else "(generated by an earlier run).")
        )
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
