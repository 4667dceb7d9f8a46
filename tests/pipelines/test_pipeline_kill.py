"""`kill -9` of the daily pipeline, then a re-run: nothing lost, nothing doubled.

`backoffice pipeline run --date D` runs as a real process (its own process group, so dbt's
subprocess dies with it) and is SIGKILLed at seeded random moments inside its ingest, dbt and
export steps, re-running it to completion after each kill. The database it leaves is then compared
with a clean, uninterrupted run on a fresh database: every table of raw, app and marts row for row,
and the export files byte for byte.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from backoffice.db.migrate import migrate
from backoffice.generator import generate

DAY = date(2026, 3, 2)
DOSSIERS = 60
SEED = 9
BACKOFFICE = str(Path(sys.executable).with_name("backoffice"))

# The phases a kill must land in, told apart by the Dagster step running at that moment.
PHASES = {
    "ingest": lambda step: step.startswith("ingest_"),
    "dbt": lambda step: "dbt" in step,
    "export": lambda step: step == "accounting_export",
}

# Columns that differ between two correct runs, and why they may:
IGNORED = {
    # when a row was written (now() at insert): a re-run writes later than the clean run
    "loaded_at",
    "created_at",
    "inserted_at",
    "ingested_at",
    "rejected_at",  # raw.rejections: when the bad line was met
    # marts.accounting_entries: the moment its record was written (app.payments.created_at, a
    # supplier invoice's received_at...), copied; the entry numbers it orders are still compared.
    # The "extra BQ entry" of the first soak runs was this: every BQ line differed by it alone.
    "validated_at",
    # surrogate keys drawn from sequences or gen_random_uuid(): a killed run's rolled-back
    # transactions consume sequence values, and uuids are random by design
    "id",
}


@pytest.fixture
def fresh_databases(database_url: str) -> Iterator[tuple[str, str]]:
    """Two freshly migrated databases on the test server: one for the clean run, one for the killed
    runs. Not the session's database: the `db` fixture empties the rows migrations write
    (invoice sellers, mail templates...), which a fresh database has."""
    base = make_url(database_url)
    names = [f"{base.database}_{run}_{uuid.uuid4().hex[:6]}" for run in ("clean", "killed")]
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    urls = []
    try:
        for name in names:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            urls.append(base.set(database=name).render_as_string(hide_password=False))
            migrate(urls[-1])
        yield urls[0], urls[1]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def dagster_storage(database_url: str) -> Iterator[tuple[str, str]]:
    """Dagster's run storage: one database for the clean run, one for the killed runs (they run at once)."""
    names = tuple(
        f"{make_url(database_url).database}_dagster_{run}_{uuid.uuid4().hex[:6]}" for run in ("clean", "kill")
    )
    yield names  # type: ignore[misc]
    admin = sa.create_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _env(database_url: str, landing: Path, exports: Path, home: Path, storage: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "BACKOFFICE_LANDING_DIR": str(landing),
        "BACKOFFICE_EXPORT_DIR": str(exports),
        "DAGSTER_HOME": str(home),
        "BACKOFFICE_DAGSTER_DATABASE": storage,
    }


def _run(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [BACKOFFICE, "pipeline", "run", "--date", DAY.isoformat()],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the kill takes dbt's subprocess too
    )


def _finish(proc: subprocess.Popen[bytes]) -> None:
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output.decode()[-2000:]


def _current_step(storage_url: str, after_event: int = 0) -> str | None:
    """The step started last after event `after_event` (Dagster's own event log, in its database)."""
    engine = sa.create_engine(storage_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT to_regclass('public.event_logs')")).scalar() is None:
                return None
            return conn.execute(
                sa.text(
                    """SELECT step_key FROM event_logs WHERE dagster_event_type = 'STEP_START' AND id > :after
                       ORDER BY id DESC LIMIT 1"""
                ),
                {"after": after_event},
            ).scalar()
    except sa.exc.OperationalError:  # the storage database is created by the run itself
        return None
    finally:
        engine.dispose()


def _last_event(storage_url: str) -> int:
    engine = sa.create_engine(storage_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT to_regclass('public.event_logs')")).scalar() is None:
                return 0
            return conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM event_logs")).scalar_one()
    except sa.exc.OperationalError:  # not created yet: the first run creates it
        return 0
    finally:
        engine.dispose()


def _kill_in(phase: str, env: dict[str, str], storage_url: str, rng: random.Random) -> str:
    """Start a run, wait until it is in `phase`, wait a random while more, SIGKILL it; returns the
    step it was killed in (checked to be in the phase, and the process still alive then)."""
    since = _last_event(storage_url)  # only this run's steps count
    proc = _run(env)
    deadline = time.monotonic() + 900
    while not PHASES[phase](step := _current_step(storage_url, since) or ""):
        assert proc.poll() is None, f"the run ended before reaching {phase}: {proc.communicate()[0].decode()[-800:]}"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.4))
    step = _current_step(storage_url, since) or ""
    assert proc.poll() is None, f"the run ended before the kill in {phase}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return step


def _tables(engine: Engine) -> dict[str, list[str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """SELECT c.table_schema || '.' || c.table_name, c.column_name
                   FROM information_schema.columns c
                   JOIN information_schema.tables t USING (table_schema, table_name)
                   WHERE c.table_schema IN ('raw', 'app', 'marts')
                   ORDER BY 1, c.ordinal_position"""
            )
        ).all()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, [])
        if column not in IGNORED:
            tables[table].append(column)
    return tables


def _dump(url: str) -> dict[str, Counter[tuple[object, ...]]]:
    """Every row of every table and view of raw, app and marts, as a multiset (a doubled row counts twice)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        tables = _tables(engine)
        with engine.connect() as conn:
            return {
                table: Counter(
                    tuple(map(_hashable, r))
                    for r in conn.execute(sa.text(f"SELECT {', '.join(map(_quoted, columns))} FROM {table}"))
                )
                for table, columns in tables.items()
                if columns
            }
    finally:
        engine.dispose()


def _hashable(value: object) -> object:
    """Rows go into a multiset: JSON documents and ranges are compared by their text."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    try:
        hash(value)
    except TypeError:
        return str(value)
    return value


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_daily_job_charges_the_balances_before_dbt_builds_the_journal() -> None:
    """The day's automatic charges run before the dbt build, so their payments are in the day's
    bank journal and export. They used to run after it (they waited for the dbt source tests of
    app.payments and app.dossiers, which Dagster runs as checks in the dbt step): a clean run left
    them for the next day's build, while a run killed after its charges and re-run built them at
    once, the extra BQ entries this soak test found. The order is read from the job's graph."""
    from pipelines.definitions import defs

    graph = defs.resolve_job_def("daily_pipeline").graph

    def upstream(step: str) -> set[str]:
        inputs = graph.dependency_structure.input_to_upstream_outputs_for_node(step)
        return {output.node_name for outputs in inputs.values() for output in outputs}

    assert "charge_balances" in upstream("dbt_models")
    assert upstream("charge_balances") == {"ingest_bookings", "ingest_payments"}
    assert upstream("accounting_export") == {"dbt_models"}


@pytest.mark.soak
@pytest.mark.timeout(1800)  # five pipeline processes; on a machine shared with other work they take minutes
def test_a_pipeline_killed_in_ingest_dbt_and_export_then_rerun_equals_a_clean_run(
    database_url: str, fresh_databases: tuple[str, str], dagster_storage: tuple[str, str], tmp_path: Path
) -> None:
    fresh_database, killed_database = fresh_databases
    landing = tmp_path / "landing"
    generate(landing, DAY, 1, DOSSIERS, seed=SEED)
    clean_storage, kill_storage = dagster_storage
    storage_url = make_url(database_url).set(database=kill_storage).render_as_string(hide_password=False)

    # Clean run: a fresh database, run once, undisturbed, at the same time as the killed runs below.
    clean_exports = tmp_path / "exports_clean"
    clean_run = _run(_env(fresh_database, landing, clean_exports, tmp_path / "dagster_clean", clean_storage))

    # Killed runs: the first run killed in ingest, its re-run killed in dbt, that one's re-run killed
    # in the export, each at a seeded random moment of its phase; then a re-run to the end. A kill
    # of each phase thus meets what the kills before it left behind.
    exports = tmp_path / "exports"
    env = _env(killed_database, landing, exports, tmp_path / "dagster", kill_storage)
    rng = random.Random(SEED)
    killed_in = []
    for phase in PHASES:
        step = _kill_in(phase, env, storage_url, rng)
        assert PHASES[phase](step), f"meant to kill in {phase}, killed in {step}"
        killed_in.append(step)
    _finish(_run(env))
    assert len(killed_in) == 3
    _finish(clean_run)
    clean = _dump(fresh_database)

    after = _dump(killed_database)
    assert set(after) == set(clean)
    assert sum(len(rows) for rows in clean.values()) > DOSSIERS
    differing = {
        table: {
            "only_after_kills": list(after[table] - clean[table])[:3],
            "only_clean": list(clean[table] - after[table])[:3],
        }
        for table in sorted(clean)
        if after[table] != clean[table]
    }
    assert differing == {}
    assert (clean_files := _files(clean_exports)), "the clean run exported nothing"
    assert _files(exports) == clean_files
