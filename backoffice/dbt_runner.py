"""Run dbt on the project's dbt_project/ against a database URL, outside Dagster.

dbt runs as a subprocess of the venv's own `dbt`: it keeps dbt's global state (flags, logging,
adapter cache) out of the caller's process, and the profile reads its connection from
environment variables mapped from the URL (see dbt_project/profiles.yml).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
DBT_EXECUTABLE = Path(sys.executable).parent / "dbt"
FAILED = {"error", "fail", "runtime error"}
TIMESTAMP = re.compile(r"^\d\d:\d\d:\d\d\s+")


class DbtFailed(RuntimeError):
    """dbt exited with an error; the message names the failing nodes and dbt's reason."""


# Memory for each sort and hash of dbt's sessions (PostgreSQL's default is 4MB): the matching and
# billing models sort and hash hundreds of thousands of rows, and spill to disk below this
# (int_matching_candidates at 100,000 dossiers: 87 s at 4MB, 51 s at 64MB; docs/dbt.md). A
# PGOPTIONS of the caller that sets work_mem wins.
DBT_WORK_MEM = "32MB"


def dbt_env(database_url: str) -> dict[str, str]:
    """The environment variables profiles.yml reads, for `database_url`, and dbt sessions' settings."""
    url = make_url(database_url)
    options = os.environ.get("PGOPTIONS", "")
    if "work_mem" not in options:
        options = f"{options} -c work_mem={DBT_WORK_MEM}".strip()
    return {
        "BACKOFFICE_DBT_HOST": url.host or "127.0.0.1",
        "BACKOFFICE_DBT_PORT": str(url.port or 5432),
        "BACKOFFICE_DBT_USER": url.username or "postgres",
        "BACKOFFICE_DBT_PASSWORD": url.password or "",
        "BACKOFFICE_DBT_DBNAME": url.database or "postgres",
        "PGOPTIONS": options,  # libpq (psycopg2, under dbt-postgres) sends these at connection
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def target_path() -> Path:
    """Where dbt writes its artifacts: DBT_TARGET_PATH (dbt's own variable) or dbt_project/target.

    Two processes running dbt at once (the test workers) each need their own."""
    return Path(os.environ.get("DBT_TARGET_PATH") or DBT_PROJECT_DIR / "target")


def run_dbt_process(args: list[str], database_url: str, target: Path) -> subprocess.CompletedProcess[str]:
    """`dbt <args>` on the project against `database_url`, its logs and artifacts under `target`: the
    one way this project starts dbt outside Dagster (run_dbt, the bench, the tests). Output captured."""
    return subprocess.run(
        [
            str(DBT_EXECUTABLE),
            "--no-use-colors",
            "--log-path",
            str(target / "logs"),
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target),
        ],
        env={**os.environ, **dbt_env(database_url)},
        cwd=DBT_PROJECT_DIR,
        capture_output=True,
        text=True,
    )


def run_dbt(args: list[str], database_url: str | None = None) -> None:
    """Run `dbt <args>` on the project against `database_url` (default: the configured database).

    Raises DbtFailed naming the failing nodes when dbt does not succeed.
    """
    if database_url is None:
        from backoffice.db.engine import resolve_database_url

        database_url = resolve_database_url()
    target = target_path()
    results = target / "run_results.json"
    results.unlink(missing_ok=True)
    proc = run_dbt_process(args, database_url, target)
    if proc.returncode != 0:
        raise DbtFailed(f"dbt {' '.join(args)} failed: {_failure(results, proc.stdout + proc.stderr)}")


def _failure(results: Path, output: str) -> str:
    if results.exists():
        failed = [
            f"{r['unique_id']}: {(r.get('message') or r['status']).strip()}"
            for r in json.loads(results.read_text())["results"]
            if r["status"] in FAILED
        ]
        if failed:
            return "; ".join(failed)
    # Without run results dbt stopped before running any node (profile, parse, connection):
    # its reason follows "Encountered an error".
    lines = [TIMESTAMP.sub("", line).strip() for line in output.splitlines()]
    lines = [line for line in lines if line]
    marker = next((i for i, line in enumerate(lines) if line.startswith("Encountered an error")), None)
    return " ".join(lines[marker + 1 :] if marker is not None else lines[-5:]) or "no output"
