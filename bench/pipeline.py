"""The daily pipeline end to end: one day of activity on top of N dossiers, run as `backoffice
pipeline run --date D` runs it, in a process of its own, so Python's start-up, the Dagster
definitions and dbt's start-up are all in the wall time; where the time goes, per step of the run
(its Dagster events), and each step's peak memory (resident set of the process and its children,
dbt's included, sampled every 0.2 s).

History: the dbt figures' dataset (bench/dbt_build.py: N dossiers with their services, price lines,
travellers, payments and supplier invoices) copied into a database of its own (`CREATE DATABASE
... TEMPLATE`), then built once by dbt, not timed: yesterday's state.

The day: the generator's landing files (backoffice.generator) for WARMUP_DAYS + 1 days from the day
after the dataset's TODAY, numbered after its dossiers (BK-<year>-900001...), PER_DAY new dossiers a
day. The warm-up days are loaded by the ingest-only job, the balances due by the last of them
charged and its accounting export written, as yesterday's run would have, not timed: so the
measured day also modifies, cancels and pays for dossiers booked before it, charges what falls due
that day and exports that day's entries. Supplier invoices come weeks after the services, so the
generated day holds few of them; the dataset's own supplier invoices (~2 lines per dossier) are
matched again by the day's dbt build, which rebuilds the matching whole.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psutil
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench import dbt_build, harness, search
from bench.report import Figure

WALL_TARGET_S = 60.0
MEMORY_TARGET = 2 * 1024**3
WARMUP_DAYS = 2
PER_DAY = {"tiny": 60, "small": 2_500, "medium": 2_500, "full": 2_500}
START = search.TODAY + timedelta(days=1)
NUMBERS_AFTER = 900_000  # the dataset's dossiers of a year stay below (1,000,000 over two years at most)
DAY = START + timedelta(days=WARMUP_DAYS)
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Step:
    key: str
    seconds: float
    peak_rss: int


def _names(scale: harness.Scale) -> tuple[str, str]:
    return f"backoffice_bench_{scale.name}_pipeline", f"backoffice_bench_{scale.name}_pipeline_dagster"


def history(scale: harness.Scale) -> str:
    """A copy of the dbt dataset without the dbt bench's day, its marts built: the URL."""
    source, _ = dbt_build.dataset(scale)
    name, storage = _names(scale)
    harness._admin(
        [
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'DROP DATABASE IF EXISTS "{storage}" WITH (FORCE)',
            f'CREATE DATABASE "{name}" TEMPLATE "{make_url(source).database}"',
        ]
    )
    url = make_url(source).set(database=name).render_as_string(hide_password=False)
    dbt_build._reset_day(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            built = conn.execute(sa.text("SELECT to_regclass('marts.accounting_entries')")).scalar() is not None
    finally:
        engine.dispose()
    target = harness.DATA_ROOT / scale.name / "pipeline_dbt_target"
    if built:
        # The journal is incremental: it still holds the entries of the dbt bench's day just taken away.
        dbt_build.dbt(["run", "--select", "accounting_entries", "--full-refresh"], url, target)
    else:
        dbt_build.dbt(dbt_build.BUILD_ARGS, url, target)
    return url


def _env(url: str, scale: harness.Scale, landing: Path, home: Path, exports: Path) -> dict[str, str]:
    _, storage = _names(scale)
    return {
        **os.environ,
        "DATABASE_URL": url,
        "BACKOFFICE_LANDING_DIR": str(landing),
        "BACKOFFICE_EXPORT_DIR": str(exports),
        "DAGSTER_HOME": str(home),
        "BACKOFFICE_DAGSTER_DATABASE": storage,
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def _warm_up(env: dict[str, str]) -> None:
    """The days before the measured one, through the ingest-only job (as `pipeline run` does for
    every day of a range but the last), in a process of its own (`python -m bench.pipeline
    --warm-up`, this module's main): not timed."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.pipeline", "--warm-up"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"warm-up days failed: {(proc.stdout + proc.stderr)[-2000:]}")


def warm_up_here() -> int:
    """Run the ingest-only job for the warm-up days against DATABASE_URL and DAGSTER_HOME."""
    from backoffice.config import get_settings
    from backoffice.db.engine import get_engine, resolve_database_url
    from backoffice.export.delivery import configured
    from backoffice.providers import SimulatorProvider
    from backoffice.services.balances import charge_due_balances
    from backoffice.services.exports import SYSTEM_EXPORTER, export_day
    from backoffice.services.unit_of_work import UnitOfWork
    from pipelines.definitions import defs
    from pipelines.instance import persistent_instance
    from pipelines.jobs import ingest_only
    from pipelines.run import QUIET

    job = defs.resolve_job_def(ingest_only.name)
    instance = persistent_instance(resolve_database_url())
    for n in range(WARMUP_DAYS):
        day = (START + timedelta(days=n)).isoformat()
        result = job.execute_in_process(partition_key=day, instance=instance, run_config=QUIET, raise_on_error=False)
        if not result.success:
            print(f"warm-up day {day} failed", file=sys.stderr)
            return 1
    yesterday = DAY - timedelta(days=1)
    engine = get_engine()  # as the balances and export assets: the application's role
    charge_due_balances(engine, yesterday, SimulatorProvider.from_settings(engine))
    # Yesterday's export took every entry validated by then: the measured day exports its own.
    with UnitOfWork(engine) as uow:
        export_day(uow, SYSTEM_EXPORTER, yesterday, configured(get_settings()))
    return 0


def _sample(proc: psutil.Process, samples: list[tuple[float, int]], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            rss = proc.memory_info().rss + sum(
                child.memory_info().rss for child in proc.children(recursive=True) if child.is_running()
            )
        except psutil.Error:
            rss = 0
        samples.append((time.time(), rss))
        stop.wait(0.2)


def _steps(env: dict[str, str], samples: list[tuple[float, int]]) -> tuple[list[Step], float, float]:
    """Each step of the measured run: its duration from the run's STEP_START to its end, and the peak
    of the samples taken meanwhile; and the run's own start and end (epoch seconds)."""
    import dagster as dg

    previous = os.environ.copy()
    os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "BACKOFFICE_DAGSTER_DATABASE")})
    try:
        instance = dg.DagsterInstance.get()
        run = instance.get_runs(limit=1)[0]
        stats = instance.get_run_stats(run.run_id)
        events = instance.all_logs(
            run.run_id,
            of_type={
                dg.DagsterEventType.STEP_START,
                dg.DagsterEventType.STEP_SUCCESS,
                dg.DagsterEventType.STEP_FAILURE,
            },
        )
    finally:
        os.environ.clear()
        os.environ.update(previous)
    starts: dict[str, float] = {}
    steps = []
    for event in events:
        key = event.step_key or "?"
        if event.dagster_event_type == dg.DagsterEventType.STEP_START:
            starts[key] = event.timestamp
        elif key in starts:
            began, ended = starts.pop(key), event.timestamp
            peak = max((rss for at, rss in samples if began <= at <= ended), default=0)
            steps.append(Step(key, ended - began, peak))
    return sorted(steps, key=lambda s: -s.seconds), stats.start_time or 0.0, stats.end_time or 0.0


def _day_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    """SELECT
                         (SELECT count(*) FROM app.dossiers WHERE updated_at::date = :day OR created_at::date = :day),
                         (SELECT count(*) FROM app.payments WHERE received_at::date = :day),
                         (SELECT count(*) FROM app.supplier_invoices WHERE invoice_date = :day),
                         (SELECT count(*) FROM app.dossiers)"""
                ),
                {"day": DAY},
            ).one()
    finally:
        engine.dispose()
    return {
        "dossiers booked or changed that day": row[0],
        "payments dated that day (the file's and the day's balance charges)": row[1],
        "supplier invoices of that day": row[2],
        "dossiers in all": row[3],
    }


def measure(scale: harness.Scale) -> list[Figure]:
    n = dbt_build.DOSSIERS[scale.name]
    data = harness.landing(
        scale, "pipeline", WARMUP_DAYS + 1, PER_DAY[scale.name], start=START, numbers_after=NUMBERS_AFTER
    )
    url = history(scale)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        env = _env(url, scale, data.root, Path(tmp) / "dagster", Path(tmp) / "exports")
        _warm_up(env)
        samples: list[tuple[float, int]] = []
        stop = threading.Event()
        launched = time.time()
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "backoffice.cli", "pipeline", "run", "--date", DAY.isoformat()],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        sampler = threading.Thread(target=_sample, args=(psutil.Process(proc.pid), samples, stop), daemon=True)
        sampler.start()
        out, err = proc.communicate()
        wall = time.perf_counter() - started
        ended = time.time()
        stop.set()
        sampler.join()
        if proc.returncode != 0:
            raise RuntimeError(f"backoffice pipeline run --date {DAY} failed: {(out + err)[-2000:]}")
        steps, run_start, run_end = _steps(env, samples)
    counts = _day_counts(url)
    for name in _names(scale):
        harness._admin([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'])
    peak = max((rss for _, rss in samples), default=0)
    in_steps = sum(s.seconds for s in steps)
    profile = "; ".join(f"{s.key} {s.seconds:.1f} s ({s.peak_rss / 1024**2:,.0f} MiB)" for s in steps)
    shape = ", ".join(f"{v:,} {k}" for k, v in counts.items())
    summary = [line for line in out.splitlines() if line.strip()]
    command = f"`python -m bench --scale {scale.name} --only pipeline`"
    return [
        Figure(
            f"Daily pipeline end to end, {n:,} dossiers",
            f"<= {WALL_TARGET_S:.0f} s",
            f"{wall:.0f} s",
            f"{wall / WALL_TARGET_S:.2f}",
            wall <= WALL_TARGET_S,
            f"Wall time of `backoffice pipeline run --date {DAY}` in a process of its own (Python and Dagster "
            f"start-up, ingest of the day's files, quality checks, balance charges, dbt build, accounting export) "
            f"on a history of {n:,} dossiers (bench/dbt_build.py's dataset, built by dbt beforehand) and "
            f"{WARMUP_DAYS} generated days loaded before it; the day: {shape}. Reproduce: {command}.",
            [
                f"Steps, slowest first, with the peak resident memory of the process tree during each: {profile}.",
                f"Process start to the run's start (Python, imports, Dagster definitions, the dbt manifest): "
                f"{run_start - launched:.1f} s; the run's end to the process's exit: {ended - run_end:.1f} s; "
                f"inside the run but between steps: {max(run_end - run_start - in_steps, 0):.1f} s.",
                "The command's summary: " + " / ".join(summary[:8]),
            ],
        ),
        Figure(
            f"Daily pipeline: peak memory, {n:,} dossiers",
            "< 2 GiB",
            f"{peak / 1024**3:.2f} GiB",
            f"{peak / MEMORY_TARGET:.2f}",
            peak < MEMORY_TARGET,
            "Largest resident set of the `pipeline run` process and its children (dbt) over the whole run, "
            f"sampled every 0.2 s; per step in the figure above. PostgreSQL's own processes are not counted. "
            f"Reproduce: {command}.",
        ),
    ]


if __name__ == "__main__":
    if sys.argv[1:] != ["--warm-up"]:
        sys.exit("usage: python -m bench.pipeline --warm-up (the figures run with python -m bench --only pipeline)")
    sys.exit(warm_up_here())
