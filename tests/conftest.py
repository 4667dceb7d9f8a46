"""Shared fixtures: a real PostgreSQL database created for this test session.

The server is the embedded one (started if needed) unless DATABASE_URL names another; either
way the tests get a database of their own, migrated from empty, and drop it at the end.
DATABASE_URL is pointed at it for the whole session so that the CLI, Dagster and dbt, run
from the tests, all see the same database.

`make test` runs on two pytest-xdist workers (`-n 2 --dist loadfile`: a file's tests share a
worker, so its module fixtures are built once). The controller starts the embedded server before
the workers and stops it after them; each worker has its own database and its own dbt target
folder (DBT_TARGET_PATH), so two dbt runs never write the same files.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from factories import REFERENCE_TABLES
from sqlalchemy.engine import Engine, make_url

from backoffice.config import get_settings

_STARTED_HERE = pytest.StashKey[bool]()  # whether this session started the embedded server


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        from backoffice.dbt_runner import DBT_PROJECT_DIR

        os.environ["DBT_TARGET_PATH"] = str(DBT_PROJECT_DIR / "target" / f"pytest-{worker}")
    if _is_worker(config):
        return
    if not get_settings().database_url:
        # Started (or found running) here, before any worker: a worker never stops it under another.
        from backoffice.db import embedded

        _, config.stash[_STARTED_HERE] = embedded.ensure_running(get_settings().embedded_pgdata)
    if config.getoption("numprocesses", None):
        # The Dagster definitions parse dbt's manifest on import when it is stale: once, here,
        # rather than in two workers writing the same files.
        from assets.dbt import ensure_manifest

        ensure_manifest()


def pytest_unconfigure(config: pytest.Config) -> None:
    if not _is_worker(config) and config.stash.get(_STARTED_HERE, False):
        from backoffice.db import embedded

        embedded.stop(get_settings().embedded_pgdata)  # leave a server someone else started running


def _admin_url(url: str) -> str:
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    from backoffice.db import embedded
    from backoffice.db.engine import normalise_url
    from backoffice.db.migrate import migrate

    settings = get_settings()
    if settings.database_url:
        server_url = normalise_url(settings.database_url)
    else:
        server, _ = embedded.ensure_running(settings.embedded_pgdata)  # pytest_configure started it
        server_url = server.url()
    name = f"backoffice_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(_admin_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    # Pipeline runs end with the accounting export: keep its files out of the checkout.
    os.environ.setdefault("BACKOFFICE_EXPORT_DIR", tempfile.mkdtemp(prefix="backoffice_exports_"))
    get_settings.cache_clear()
    migrate(url)
    try:
        yield url
    finally:
        from backoffice.db.engine import get_engine

        get_engine.cache_clear()
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
        get_settings.cache_clear()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", autouse=True)
def _database_before_any_test(database_url: str) -> None:
    """DATABASE_URL names the session's database before the first test, whichever it is: the process
    caches its engine (get_engine, the app's st.cache_resource) on the URL in effect at first use,
    and a worker's first file may be one that never asks for the database fixture."""


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """The owner's engine: tests set up, empty and inspect tables with it. Services given it still
    act as the application's role (each unit of work runs under SET LOCAL ROLE backoffice_app)."""
    from backoffice.db.engine import owner_engine

    engine = owner_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def price_lines_mart(database_url: str) -> None:
    """The Devis view (marts.dossier_price_lines), built by dbt when it is not there (factories)."""
    import factories

    factories.build_price_lines_mart(database_url)


@pytest.fixture
def db(engine: Engine) -> Iterator[Engine]:
    """An engine on a database emptied of everything but reference data before the test.

    dbt's tables (incremental entries, matching candidates) are emptied too: they derive from
    the rows emptied here, and left behind they would describe another test's data."""
    with engine.begin() as conn:
        tables = conn.execute(
            sa.text(
                """SELECT schemaname || '.' || tablename FROM pg_tables
                   WHERE schemaname IN ('raw', 'app', 'audit', 'intermediate', 'marts')"""
            )
        ).scalars()
        to_empty = sorted(set(tables) - REFERENCE_TABLES)
        conn.execute(sa.text(f"TRUNCATE {', '.join(to_empty)} RESTART IDENTITY CASCADE"))
    yield engine
