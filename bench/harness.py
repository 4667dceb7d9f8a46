"""What every benchmark needs: a throwaway database, cached data, timing, peak memory, the machine.

Timed work that must report its own peak memory runs in a child process (spawned, so it starts
from a clean interpreter): its `ru_maxrss` is then the peak of that work alone, not of the
harness that generated data or ran the baselines before it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = ROOT / ".data" / "bench"


@dataclass(frozen=True)
class Scale:
    name: str
    snapshots: int  # booking snapshots in the one day folder the ingest figures load
    repeats: int  # each timed figure is the median of this many runs
    pandas_rows: int  # dossiers timed for the to_sql baseline (rows/s is extrapolated past it)
    large_day: int = 200_000  # snapshots in the one day whose load's peak memory is measured


SCALES = {
    "tiny": Scale("tiny", 300, 1, 300, 600),  # the harness's own test
    "small": Scale("small", 20_000, 3, 20_000, 200_000),
    "medium": Scale("medium", 200_000, 3, 100_000, 200_000),
    "full": Scale("full", 1_000_000, 3, 100_000, 1_000_000),
}


@dataclass(frozen=True)
class Timing:
    median_s: float
    runs_s: tuple[float, ...]


def timed(fn: Callable[[], Any], repeats: int, before: Callable[[], Any] | None = None) -> Timing:
    """Median wall time of `fn` over `repeats` runs; `before` (untimed) resets state between runs."""
    runs = []
    for _ in range(repeats):
        if before is not None:
            before()
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return Timing(statistics.median(runs), tuple(runs))


def peak_rss() -> int:
    """This process's peak resident memory in bytes.

    VmHWM rather than ru_maxrss: Linux carries ru_maxrss across fork + exec, so a spawned child
    would report the parent's size at the fork (the harness holding its baselines' data) when
    that is larger than anything the child does.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _child(queue: multiprocessing.Queue, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        result = fn(*args)
        queue.put(("ok", result, peak_rss()))
    except BaseException as exc:  # the parent re-raises it with the child's message
        queue.put(("error", f"{type(exc).__name__}: {exc}", 0))


def in_child(fn: Callable[..., Any], *args: Any) -> tuple[Any, int]:
    """Run `fn(*args)` in a fresh process; return its result and the process's peak RSS in bytes."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, fn, args))
    proc.start()
    status, result, peak = queue.get()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"benchmark child failed: {result}")
    return result, peak


# ---------------------------------------------------------------- database
def server_url() -> str:
    from backoffice.db.engine import resolve_database_url

    return resolve_database_url()


def _admin(statements: list[str]) -> None:
    admin = sa.create_engine(make_url(server_url()).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        admin.dispose()


def bench_database(scale: str, only: str | None = None) -> str:
    """Create (again) `backoffice_bench_<scale>[_<figure>]` on the configured server, migrated; return its URL.

    One database per figure group run alone, so two `--only` runs at once never share tables."""
    from backoffice.db.migrate import migrate

    name = f"backoffice_bench_{scale}" + (f"_{only}" if only else "")
    _admin([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'])
    url = make_url(server_url()).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    return url


def drop_bench_database(scale: str, only: str | None = None) -> None:
    name = f"backoffice_bench_{scale}" + (f"_{only}" if only else "")
    _admin([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'])


def empty_database(url: str) -> None:
    """Truncate raw.*, app.* and audit.* except the reference data migrations wrote."""
    keep = {"app.roles", "app.permissions", "app.role_permissions"}
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            tables = conn.execute(
                sa.text(
                    "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname IN ('raw', 'app', 'audit')"
                )
            ).scalars()
            conn.execute(sa.text(f"TRUNCATE {', '.join(sorted(set(tables) - keep))} RESTART IDENTITY CASCADE"))
            conn.execute(sa.text("CHECKPOINT"))  # so one run's dirty pages are not flushed during the next
    finally:
        engine.dispose()


# ---------------------------------------------------------------- data
@dataclass(frozen=True)
class Dataset:
    root: Path  # the landing root; its ground truth is under root/ground_truth
    start: date
    days: int
    dossiers_per_day: int


def landing(
    scale: Scale,
    kind: str,
    days: int,
    dossiers_per_day: int,
    seed: int = 20260302,
    start: date = date(2026, 3, 2),
    numbers_after: int = 0,
) -> Dataset:
    """Generator output for these arguments, generated once and kept under .data/bench/<scale>/.

    Keyed by the generator's arguments, and marked complete only after generation ends, so a
    run interrupted half-way regenerates instead of benchmarking a truncated file.
    """
    from backoffice.generator import generate

    params = {"start": start.isoformat(), "days": days, "dossiers_per_day": dossiers_per_day, "seed": seed}
    if numbers_after:
        params["numbers_after"] = numbers_after
    root = DATA_ROOT / scale.name / f"{kind}-{'-'.join(str(v) for v in params.values())}"
    done = root / "complete.json"
    if not done.exists():
        root.mkdir(parents=True, exist_ok=True)
        summary = generate(root / "landing", start, days, dossiers_per_day, seed, numbers_after=numbers_after)
        done.write_text(json.dumps({"params": params, "summary": asdict(summary)}))
    return Dataset(root / "landing", start, days, dossiers_per_day)


def booking_day(scale: Scale) -> Dataset:
    """One day folder holding `scale.snapshots` new dossiers (a one-day run writes only creations)."""
    return landing(scale, "bookings", 1, scale.snapshots)


def large_booking_day(scale: Scale) -> Dataset:
    """One day folder holding `scale.large_day` new dossiers, for the memory figure."""
    return landing(scale, "bookings", 1, scale.large_day)


# ---------------------------------------------------------------- machine
def machine(url: str) -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            pg = conn.execute(sa.text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": f"{ram / 2**30:.0f} GiB",
        "postgresql": str(pg),
        "python": platform.python_version(),
    }


def describe(m: dict[str, str]) -> str:
    return f"{m['cpu']}, {m['cores']} cores, {m['ram']} RAM, PostgreSQL {m['postgresql']}, Python {m['python']}"
