"""The Dagster instance: its dagster.yaml, materialised into DAGSTER_HOME from DATABASE_URL.

Runs, events and schedules are stored in PostgreSQL on the same server as the backoffice
database, in a database of their own ("dagster", or BACKOFFICE_DAGSTER_DATABASE). dagster.yaml holds
the password, so any Dagster process (webserver, daemon) can use the instance with only
DAGSTER_HOME set; like the embedded server's credentials file, it is readable by its owner only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from backoffice.config import get_settings


def dagster_home() -> Path:
    home = os.environ.get("DAGSTER_HOME")
    return Path(home).resolve() if home else (get_settings().data_dir / "dagster").resolve()


def storage_database() -> str:
    return os.environ.get("BACKOFFICE_DAGSTER_DATABASE", "dagster")


def instance_yaml(database_url: str) -> str:
    url = make_url(database_url)
    password = f"\n      password: {json.dumps(url.password)}" if url.password else ""
    return (
        "# Written by pipelines/instance.py from DATABASE_URL: change that code, not this file.\n"
        "telemetry:\n  enabled: false\n"
        "storage:\n  postgres:\n    postgres_db:\n"
        f"      hostname: {json.dumps(url.host or '127.0.0.1')}\n"
        f"      port: {url.port or 5432}\n"
        f"      username: {json.dumps(url.username or 'postgres')}{password}\n"
        f"      db_name: {json.dumps(storage_database())}\n"
        # psycopg2 explicitly: dagster-postgres' SQL does not run on SQLAlchemy's psycopg 3 dialect.
        "      scheme: postgresql+psycopg2\n"
    )


def _ensure_storage_database(database_url: str) -> None:
    name = storage_database()
    admin = sa.create_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists is None:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def ensure_dagster_home(database_url: str | None = None) -> Path:
    """DAGSTER_HOME with its dagster.yaml written for `database_url` (default: the configured
    database) and its storage database created: what `dagster dev` or the webserver needs."""
    if database_url is None:
        from backoffice.db.engine import resolve_database_url

        database_url = resolve_database_url()
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    text = instance_yaml(database_url)
    if not config.exists() or config.read_text() != text:
        config.touch(mode=0o600)
        config.chmod(0o600)
        config.write_text(text)
    _ensure_storage_database(database_url)
    return home


def persistent_instance(database_url: str) -> dg.DagsterInstance:
    """The instance the Dagster UI shows, its dagster.yaml (re)written for `database_url`."""
    return dg.DagsterInstance.from_config(str(ensure_dagster_home(database_url)))
