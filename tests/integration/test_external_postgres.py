"""Past one machine, proven here: everything pointed at one external PostgreSQL by DATABASE_URL.

A second PostgreSQL server, started for this module from the embedded wheel's own initdb/pg_ctl on
its own TCP port with a password (nothing of the test session's server is shared), stands for a
managed server. `deploy/run_external.py` (what `make run-external DATABASE_URL=...` runs) is then
started against it as a person would: it migrates the database, installs deploy/dagster-postgres.yaml
as the Dagster instance (runs, event log, schedules and sensors in PostgreSQL; queued run coordinator)
and starts `dagster-daemon` and two Streamlit processes of the app. Then:

- a run of the `ingest_only` job for a day partition is submitted with `dagster job launch`: it waits
  QUEUED in the Postgres run storage until the daemon launches it, and must end SUCCESS there, having
  loaded the day's landing files into the external backoffice database;
- two agents in two headless Chromium pages, one on each Streamlit process: what one adds to a dossier
  is seen by the other's page; then both submit a price adjustment from the same version of the dossier
  at the same moment: exactly one is applied, the other is refused as stale on its page, audited, and
  the dossier's total is the sum of its lines.

Slow by nature (a PostgreSQL server, the Dagster daemon, its code server and a run subprocess, two
Streamlit processes and Chromium on two cores): a soak test, run by `make soak` or
`pytest -m soak tests/integration/test_external_postgres.py` (docs/scaling.md, "Proven here").
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa
from babel.numbers import format_currency
from playwright.sync_api import Locator, Page, expect, sync_playwright
from sqlalchemy.engine import make_url

from backoffice.db import embedded
from bench.browser import CHROMIUM, CHROMIUM_ARGS  # one definition of the headless browser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DAY = date(2026, 3, 2)
DAGSTER_DB = "dagster_runs"  # not one the embedded wheel creates: run_external.py must create it

pytestmark = [
    pytest.mark.soak,
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


def _load_run_external():  # deploy/ is not a package: the script's own helpers, loaded from its file
    spec = importlib.util.spec_from_file_location("run_external", DEPLOY / "run_external.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_external = _load_run_external()


@dataclass(frozen=True)
class Stack:
    database_url: str  # as a person gives it: postgresql://user:password@host:port/backoffice
    env: dict[str, str]  # what the Dagster processes see (DATABASE_URL, DAGSTER_HOME, DAGSTER_PG_*)
    apps: tuple[str, str]  # the two Streamlit processes
    dossier: str
    run_launch: subprocess.Popen[str]

    def engine(self, database: str = "backoffice") -> sa.Engine:
        url = make_url(self.database_url).set(drivername="postgresql+psycopg", database=database)
        return sa.create_engine(url, poolclass=sa.pool.NullPool)


def _free_ports(n: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # The server user (nobody, when run as root) must reach the data folder: not under pytest's 0700 tmp.
    folder = Path(tempfile.mkdtemp(prefix="backoffice_external_", dir="/tmp"))
    folder.chmod(0o755)
    pgdata = folder / "pg"
    try:
        server, _ = embedded.ensure_running(pgdata)
    except BaseException:
        embedded.stop(pgdata)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    database_url = f"postgresql://{embedded.SUPERUSER}:{server.password}@127.0.0.1:{server.port}/backoffice"
    app_ports = _free_ports(1)  # the script serves the second process on the next port
    # Nothing of the test session's configuration leaks in: only what a deployment would set.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BACKOFFICE_", "DAGSTER_", "DATABASE_URL"))}
    base |= {
        "DATABASE_URL": database_url,
        "BACKOFFICE_LANDING_DIR": str(folder / "landing"),
        "BACKOFFICE_EXPORT_DIR": str(folder / "exports"),
        "DAGSTER_HOME": str(folder / "dagster"),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    command = [sys.executable, str(DEPLOY / "run_external.py"), "--replicas", "2", "--app-port", str(app_ports[0])]
    command += ["--dagster-port", "0", "--dagster-db", DAGSTER_DB, "--logs", str(folder / "logs")]
    script = subprocess.Popen(
        command,
        env=base,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    launch = None
    try:
        apps = tuple(f"http://127.0.0.1:{port}" for port in (app_ports[0], app_ports[0] + 1))
        deadline = time.monotonic() + 240
        while not all(_healthy(app) for app in apps):
            assert script.poll() is None, f"run_external.py stopped: {script.stdout.read()[-3000:]}"
            assert time.monotonic() < deadline, "the two Streamlit processes did not answer in 240 s"
            time.sleep(0.5)
        # The script migrated the database: seed it as the services would, through the same URL.
        from backoffice.db.engine import owner_engine
        from backoffice.generator import generate

        engine = owner_engine(make_url(database_url).set(drivername="postgresql+psycopg").render_as_string(False))
        try:
            f.user(engine, "alice", "agent")
            f.user(engine, "bruno", "agent")
            dossier = f.dossier(engine)
        finally:
            engine.dispose()
        f.build_price_lines_mart(engine.url.render_as_string(hide_password=False))  # the Devis view
        generate(folder / "landing", DAY, 1, 20, 7)
        env = base | run_external.dagster_env(database_url, DAGSTER_DB)
        # Submitted, not run: with the queued run coordinator the run waits for the daemon.
        command = [str(Path(sys.executable).with_name("dagster")), "job", "launch", "-w", str(ROOT / "workspace.yaml")]
        command += ["-j", "ingest_only", "--tags", json.dumps({"dagster/partition": DAY.isoformat()})]
        launch = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # with the code server it spawns: killed as a group if the test ends early
        )
        yield Stack(database_url, env, apps, dossier, launch)
    finally:
        if launch is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(launch.pid, signal.SIGKILL)
            launch.wait()
        if script.poll() is None:
            script.send_signal(signal.SIGTERM)  # it stops the daemon and both Streamlit processes
            try:
                script.wait(timeout=60)
            except subprocess.TimeoutExpired:
                script.kill()
                script.wait()
        embedded.stop(pgdata)
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- two agents, two processes
def _log_in(page: Page, app: str, login: str) -> None:
    page.goto(app)
    page.get_by_label("Identifiant").fill(login)
    page.get_by_label("Mot de passe").fill(f.PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.locator("[data-testid=stDataFrame]").wait_for(timeout=60_000)


def _open(page: Page, number: str) -> None:
    """Search the dossier by number in the Liste and open it by selecting its row."""
    page.get_by_label("N° de dossier").fill(number)
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_text("1 dossiers · page 1 sur 1")).to_be_visible(timeout=30_000)
    box = page.locator("[data-testid=stDataFrame]").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 16, box["y"] + 35 + 17)  # the first row's marker (the grid is a canvas)
    expect(page.get_by_role("heading", name=f"{number} ·")).to_be_visible(timeout=30_000)


def _adjustment_form(page: Page) -> Locator:
    submit = page.get_by_role("button", name="Ajouter l'ajustement")
    return page.locator("[data-testid=stForm]").filter(has=submit)


def _fill_adjustment(page: Page, label: str, amount: str) -> None:
    form = _adjustment_form(page)
    form.get_by_role("textbox", name="Libellé", exact=True).fill(label)
    form.get_by_role("textbox", name="Prix de vente unitaire", exact=True).fill(amount)
    form.get_by_role("textbox", name="Motif", exact=True).fill(f"{label}, test multi-processus")


def _submit(page: Page) -> None:
    _adjustment_form(page).get_by_role("button", name="Ajouter l'ajustement").click()


def _total(page: Page) -> object:
    return expect(page.get_by_test_id("stMetric").filter(has_text="Total vente (lignes actives)"))


def _euros(amount: str) -> str:
    return format_currency(Decimal(amount), "EUR", locale="fr_FR")


def test_two_app_processes_share_the_database_and_refuse_a_stale_write(stack: Stack) -> None:
    number = stack.dossier
    expect.set_options(timeout=30_000)  # two Streamlit processes, a daemon, a run and Chromium share two cores
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            alice = browser.new_context(locale="fr-FR", viewport={"width": 1440, "height": 1100}).new_page()
            bruno = browser.new_context(locale="fr-FR", viewport={"width": 1440, "height": 1100}).new_page()
            _log_in(alice, stack.apps[0], "alice")
            _log_in(bruno, stack.apps[1], "bruno")

            # Alice, on the first process, adds a line; Bruno, on the second, then sees it.
            _open(alice, number)
            _total(alice).to_contain_text(_euros("1000.00"))
            _fill_adjustment(alice, "Supplément vue mer", "100.00")
            _submit(alice)
            _total(alice).to_contain_text(_euros("1100.00"))
            _open(bruno, number)
            _total(bruno).to_contain_text(_euros("1100.00"))

            # Both now hold version 2 and submit at the same moment: one wins, the other is stale.
            _fill_adjustment(alice, "Transfert privé", "50.00")
            _fill_adjustment(bruno, "Assurance annulation", "70.00")
            _submit(alice)
            _submit(bruno)
            stale = "was changed by someone else"
            deadline = time.monotonic() + 60
            while True:
                refused = [page for page in (alice, bruno) if page.get_by_text(stale).count()]
                if refused or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert len(refused) == 1, "exactly one of the two concurrent writes must be refused as stale"
            winner = bruno if refused[0] is alice else alice
            won = {alice: ("Transfert privé", "1150.00"), bruno: ("Assurance annulation", "1170.00")}[winner]
            _total(winner).to_contain_text(_euros(won[1]))
            expect(refused[0].get_by_text("(your version 2, now 3)")).to_be_visible()
        finally:
            browser.close()
            expect.set_options(timeout=5_000)  # Playwright's default, for the tests after this one

    engine = stack.engine()
    try:
        with engine.connect() as conn:
            labels = conn.execute(
                sa.text(
                    "SELECT label FROM app.price_lines WHERE dossier_number = :n AND origin <> 'booking' ORDER BY 1"
                ),
                {"n": number},
            ).scalars()
            assert sorted(labels) == sorted(["Supplément vue mer", won[0]])
            version, total, lines = conn.execute(
                sa.text(
                    """SELECT d.version, d.sale_total,
                              (SELECT sum(unit_sale_amount * quantity) FROM app.price_lines p
                               WHERE p.dossier_number = d.dossier_number)
                       FROM app.dossiers d WHERE d.dossier_number = :n"""
                ),
                {"n": number},
            ).one()
            assert (version, total, lines) == (3, Decimal(won[1]), Decimal(won[1]))
            loser = "alice" if refused[0] is alice else "bruno"
            refusals = conn.execute(
                sa.text(
                    """SELECT actor, detail FROM audit.events
                       WHERE action = 'price_adjustment' AND outcome = 'refused' AND dossier_number = :n"""
                ),
                {"n": number},
            ).all()
            assert [(actor, stale in detail) for actor, detail in refusals] == [(loser, True)]
    finally:
        engine.dispose()


# ---------------------------------------------------------------- Dagster on Postgres storage
def test_a_run_queued_through_the_daemon_succeeds_in_the_postgres_run_storage(stack: Stack) -> None:
    output, _ = stack.run_launch.communicate(timeout=240)
    assert stack.run_launch.returncode == 0, output[-3000:]
    storage = stack.engine(DAGSTER_DB)
    try:
        deadline = time.monotonic() + 400
        while True:
            with storage.connect() as conn:
                runs = conn.execute(sa.text("SELECT run_id, status FROM runs")).all()
            assert len(runs) == 1, runs
            run_id, status = runs[0]
            if status in ("SUCCESS", "FAILURE", "CANCELED") or time.monotonic() > deadline:
                break
            time.sleep(1)
        with storage.connect() as conn:
            events = conn.execute(
                sa.text(
                    """SELECT dagster_event_type FROM event_logs
                       WHERE run_id = :r AND dagster_event_type LIKE 'PIPELINE_%' ORDER BY id"""
                ),
                {"r": run_id},
            ).scalars()
            lifecycle = list(events)
            daemons = set(conn.execute(sa.text("SELECT daemon_type FROM daemon_heartbeats")).scalars())
            tags = dict(conn.execute(sa.text("SELECT key, value FROM run_tags WHERE run_id = :r"), {"r": run_id}).all())
        assert status == "SUCCESS", (status, lifecycle)
        # Submitted to the queue by the CLI, launched from it by the daemon: only the daemon dequeues.
        assert lifecycle == ["PIPELINE_ENQUEUED", "PIPELINE_STARTING", "PIPELINE_START", "PIPELINE_SUCCESS"]
        assert {"QUEUED_RUN_COORDINATOR", "SCHEDULER", "SENSOR"} <= daemons
        assert tags["dagster/partition"] == DAY.isoformat()
    finally:
        storage.dispose()
    # The run's code location read DATABASE_URL: the day landed in the external backoffice database.
    engine = stack.engine()
    try:
        with engine.connect() as conn:
            loaded = conn.execute(
                sa.text("SELECT count(*) FROM app.dossiers WHERE dossier_number <> :seeded"), {"seeded": stack.dossier}
            ).scalar_one()
            payments = conn.execute(sa.text("SELECT count(*) FROM app.payments")).scalar_one()
        assert loaded >= 15 and payments >= 10, (loaded, payments)
    finally:
        engine.dispose()
