"""`backoffice demo`: from nothing to a working back-office on localhost.

Database up and migrated, a few months of demo data generated and run through the pipeline
(once: a marker remembers it), demo accounts created (passwords printed once), then the
Streamlit app and the Dagster UI served until Ctrl-C, which stops everything this started.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from backoffice.config import Settings
from backoffice.domain.clock import accounting_today

DEMO_ACCOUNTS = (("agent", "agent"), ("senior", "senior_agent"), ("compta", "accountant"), ("admin", "admin"))
DEMO_DAYS = 90
DEMO_DOSSIERS_PER_DAY = 40
DEMO_SEED = 2026
ROOT = Path(__file__).resolve().parent.parent


def _free_port(preferred: int) -> int:
    for port in range(preferred, preferred + 50):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {preferred} and {preferred + 49}")


def load_demo_data(settings: Settings, say: Callable[[str], None]) -> None:
    """Generate and run the demo days once; the marker makes a second `make run` skip it."""
    marker = settings.data_dir / "demo-data.json"
    if marker.exists():
        say(f"demo data already loaded ({json.loads(marker.read_text())['days']} days), reusing it")
        return
    from backoffice.generator import generate
    from pipelines.run import run_days

    last = accounting_today()
    first = last - timedelta(days=DEMO_DAYS - 1)
    say(f"generating {DEMO_DAYS} days of demo data into {settings.landing_dir}")
    generate(settings.landing_dir, first, DEMO_DAYS, DEMO_DOSSIERS_PER_DAY, DEMO_SEED)
    say("running them through the pipeline (ingest, checks, dbt)")

    def every_tenth_day(done: int, total: int, note: str) -> None:
        if done % 10 == 0 or done == total:
            print(f"  {done}/{total} days, {note}", file=sys.stderr)  # stdout is muted below

    # dagster-dbt echoes every dbt event on stdout; the progress lines are what the demo prints.
    with contextlib.redirect_stdout(io.StringIO()):
        summary = run_days(first, last, progress=every_tenth_day)
    for line in summary.lines():
        say(line)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"first": first.isoformat(), "last": last.isoformat(), "days": DEMO_DAYS}))


def create_demo_accounts(say: Callable[[str], None]) -> None:
    """Create the demo accounts that do not exist yet; their passwords are shown this once."""
    from backoffice.db.engine import get_engine
    from backoffice.services.unit_of_work import UnitOfWork
    from backoffice.services.users import add_user, list_users

    with UnitOfWork(get_engine()) as uow:
        existing = {u.login for u in list_users(uow)}
    created = []
    for login, role in DEMO_ACCOUNTS:
        if login in existing:
            continue
        password = secrets.token_urlsafe(12)
        with UnitOfWork(get_engine()) as uow:
            add_user(uow, None, login, role, password, display_name=login.capitalize(), locale="fr")
        created.append((login, role, password))
    if created:
        say("demo accounts (passwords shown only now, keep them):")
        for login, role, password in created:
            say(f"  {login:<8} {role:<13} {password}")
    else:
        say("demo accounts exist already: " + ", ".join(login for login, _ in DEMO_ACCOUNTS))


def serve(database_url: str, say: Callable[[str], None]) -> None:
    """Run Streamlit, the Dagster UI and its daemon until Ctrl-C, then stop them."""
    from pipelines.instance import ensure_dagster_home

    env = {**os.environ, "DATABASE_URL": database_url, "DAGSTER_HOME": str(ensure_dagster_home())}
    bin_dir = Path(sys.executable).parent
    app_port, dagster_port = _free_port(8501), _free_port(3000)
    commands = {
        "streamlit": [
            str(bin_dir / "streamlit"),
            "run",
            str(ROOT / "apps/streamlit/streamlit_app.py"),
            "--server.port",
            str(app_port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        "dagster-webserver": [
            str(bin_dir / "dagster-webserver"),
            "-w",
            str(ROOT / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(dagster_port),
        ],
        "dagster-daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
    }
    logs = Path(env["DAGSTER_HOME"]).parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes = {
        name: subprocess.Popen(
            cmd,
            env=env,
            cwd=ROOT,
            stdout=(logs / f"{name}.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for name, cmd in commands.items()
    }
    say(f"back-office (Streamlit): http://127.0.0.1:{app_port}")
    say(f"Dagster UI:              http://127.0.0.1:{dagster_port}")
    say(f"logs in {logs}; Ctrl-C stops everything")
    try:
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.5)
        dead = [name for name, p in processes.items() if p.poll() is not None]
        say(f"{', '.join(dead)} stopped unexpectedly: see {logs}")
    except KeyboardInterrupt:
        say("stopping")
    finally:
        for p in processes.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in processes.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
