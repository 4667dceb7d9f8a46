"""Serve the back-office on an external PostgreSQL: `make run-external DATABASE_URL=postgresql://...`.

What `make run` does on the embedded server, laid out as it would be past one machine (docs/scaling.md):

1. the database given by DATABASE_URL is checked and migrated (as `backoffice up`);
2. DAGSTER_HOME (default .data/dagster-external) gets deploy/dagster-postgres.yaml as its dagster.yaml:
   runs, event log and schedules in the database --dagster-db (default "dagster") of the same server,
   created if missing; the connection values go to the Dagster processes as DAGSTER_PG_* variables,
   never into the file;
3. `dagster-daemon` (schedules, sensors, the run queue), `dagster-webserver` (unless --dagster-port 0)
   and --replicas Streamlit processes of the app (ports --app-port, --app-port + 1, ...) are started,
   all pointed at the same DATABASE_URL, and served until Ctrl-C (or SIGTERM), which stops them all.

Logs go to --logs (default .data/external-logs), one file per process. No demo data and no accounts
are created: create the first administrator with `backoffice users add` against the same DATABASE_URL.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).resolve().with_name("dagster-postgres.yaml")
BIN = Path(sys.executable).parent


def dagster_env(database_url: str, dagster_db: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables deploy/dagster-postgres.yaml reads, from DATABASE_URL's server."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    return {
        "DAGSTER_PG_HOST": url.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_USER": url.username or "postgres",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_DB": dagster_db,
    }


def prepare(database_url: str, home: Path, dagster_db: str) -> str:
    """Migrate the backoffice database, create Dagster's, write DAGSTER_HOME/dagster.yaml; return the URL."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from backoffice.db.engine import check_connection, normalise_url
    from backoffice.db.migrate import migrate

    url = normalise_url(database_url)
    check_connection(url)
    migrate(url)
    admin = sa.create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": dagster_db}).first() is None:
                conn.execute(sa.text(f'CREATE DATABASE "{dagster_db}"'))
    finally:
        admin.dispose()
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TEMPLATE, home / "dagster.yaml")
    return url


def commands(replicas: int, app_port: int, dagster_port: int) -> dict[str, list[str]]:
    workspace = str(ROOT / "workspace.yaml")
    out = {"dagster-daemon": [str(BIN / "dagster-daemon"), "run", "-w", workspace]}
    if dagster_port:
        out["dagster-webserver"] = [
            str(BIN / "dagster-webserver"),
            *("-w", workspace, "-h", "127.0.0.1", "-p", str(dagster_port)),
        ]
    for n in range(replicas):
        out[f"streamlit-{n + 1}"] = [
            str(BIN / "streamlit"),
            *("run", str(ROOT / "apps/streamlit/streamlit_app.py")),
            *("--server.port", str(app_port + n), "--server.address", "127.0.0.1"),
            *("--server.headless", "true", "--browser.gatherUsageStats", "false"),
        ]
    return out


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/run_external.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2, help="Streamlit processes (default 2)")
    parser.add_argument("--app-port", type=int, default=8501, help="port of the first Streamlit process")
    parser.add_argument("--dagster-port", type=int, default=3000, help="Dagster UI port; 0: no webserver")
    parser.add_argument("--dagster-db", default=os.environ.get("BACKOFFICE_DAGSTER_DATABASE", "dagster"))
    parser.add_argument(
        "--home", type=Path, default=Path(os.environ.get("DAGSTER_HOME", ROOT / ".data/dagster-external"))
    )
    parser.add_argument("--logs", type=Path, default=ROOT / ".data" / "external-logs")
    args = parser.parse_args(argv)
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url:
        print(
            "error: set DATABASE_URL to the external PostgreSQL (postgresql://user:password@host:port/db)",
            file=sys.stderr,
        )
        return 2
    from backoffice.db.engine import DatabaseUnavailable

    home = args.home.resolve()
    try:
        url = prepare(database_url, home, args.dagster_db)
    except DatabaseUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    env = {
        **os.environ,
        **dagster_env(url, args.dagster_db),
        "DATABASE_URL": url,
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    args.logs.mkdir(parents=True, exist_ok=True)
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        for name, cmd in commands(args.replicas, args.app_port, args.dagster_port).items():
            processes[name] = subprocess.Popen(
                cmd,
                env=env,
                cwd=ROOT,
                stdout=(args.logs / f"{name}.log").open("ab"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # name -> (address, health check path)
        served = {
            f"streamlit-{n + 1}": (f"http://127.0.0.1:{args.app_port + n}", "/_stcore/health")
            for n in range(args.replicas)
        }
        if args.dagster_port:
            served["dagster-webserver"] = (f"http://127.0.0.1:{args.dagster_port}", "/server_info")
        waiting = set(served)
        deadline = time.monotonic() + 120
        while waiting and time.monotonic() < deadline:
            waiting = {name for name in waiting if not _healthy("".join(served[name]))}
            if any(p.poll() is not None for p in processes.values()):
                break
            time.sleep(0.3)
        for name, (address, _path) in served.items():
            print(f"{name}: {address}{' (NOT answering yet)' if name in waiting else ''}", flush=True)
        print(f"dagster-daemon: DAGSTER_HOME={home}, runs in database {args.dagster_db!r}", flush=True)
        print(f"logs in {args.logs}; Ctrl-C stops everything", flush=True)
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.5)
        dead = [name for name, p in processes.items() if p.poll() is not None]
        print(f"{', '.join(dead)} stopped unexpectedly: see {args.logs}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopping", flush=True)
        return 0
    finally:
        stop_all(processes.values())


def stop_all(processes: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process group, wait, then SIGKILL what is left of each group: the daemon's code
    server and the runs it launched are in the daemon's group, and a code server that outlives its
    daemon (seen once, spinning) must not stay behind."""
    processes = list(processes)
    for p in processes:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):  # ProcessLookupError: the whole group is gone already
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


if __name__ == "__main__":
    sys.exit(main())
