"""The `backoffice` command as a person runs it: exit codes, one-line reasons, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa


def backoffice(*args: str, database_url: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backoffice.cli", *args],
        env={**os.environ, "DATABASE_URL": database_url},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_up_prints_the_url_in_use(db: sa.Engine, database_url: str) -> None:
    result = backoffice("up", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(database_url.rsplit("/", 1)[1])


def test_a_wrong_database_url_is_one_clear_line(database_url: str) -> None:
    for url, expected in [
        ("postgresql://nobody:secret@127.0.0.1:1/nowhere", "cannot connect to PostgreSQL at 127.0.0.1:1/nowhere"),
        ("mysql://x@localhost/db", "DATABASE_URL must be a PostgreSQL URL"),
        ("not a url", "DATABASE_URL is not a valid URL"),
    ]:
        result = backoffice("up", database_url=url)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr


def test_users_add_and_list(db: sa.Engine, database_url: str) -> None:
    added = backoffice(
        "users",
        "add",
        "claire",
        "--role",
        "accountant",
        "--password-stdin",
        database_url=database_url,
        stdin="a long enough password\n",
    )
    assert added.returncode == 0, added.stderr
    listed = backoffice("users", "list", database_url=database_url)
    assert "claire\taccountant\tfr\tactive" in listed.stdout
    refused = backoffice(
        "users",
        "add",
        "claire",
        "--role",
        "accountant",
        "--password-stdin",
        database_url=database_url,
        stdin="a long enough password\n",
    )
    assert refused.returncode == 1 and refused.stderr == "error: login: 'claire' already exists\n"


def test_generate_writes_the_landing_folders_and_refuses_a_bad_date(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "landing"
    done = backoffice(
        "generate",
        "--out",
        str(out),
        "--start",
        "2026-05-01",
        "--days",
        "2",
        "--dossiers-per-day",
        "5",
        "--seed",
        "3",
        database_url=database_url,
    )
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.iterdir()} >= {"bookings", "payments", "reference", "ground_truth"}
    bad = backoffice("generate", "--out", str(out), "--start", "01/05/2026", database_url=database_url)
    assert bad.returncode == 1 and "--start: '01/05/2026' is not a date (YYYY-MM-DD)" in bad.stderr
