"""Resources: the database, the landing zone and dbt, all from the project's Settings."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version as installed_version
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from packaging.version import Version
from sqlalchemy.engine import Engine

from backoffice.config import get_settings
from backoffice.db.engine import get_engine, resolve_database_url
from backoffice.dbt_runner import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_env


class Database(dg.ConfigurableResource):
    """The backoffice PostgreSQL database; unset url means DATABASE_URL or the embedded server."""

    url: str | None = None

    def resolved_url(self) -> str:
        return self.url or resolve_database_url()

    def engine(self) -> Engine:
        return get_engine(self.resolved_url())


class LandingZone(dg.ConfigurableResource):
    """The landing folder (shared/contracts/landing.md); unset means BACKOFFICE_LANDING_DIR."""

    path: str | None = None

    def root(self) -> Path:
        return Path(self.path) if self.path else get_settings().landing_dir


class Dbt(DbtCliResource):
    """dbt from this venv, pointed at dbt_project/."""

    @property
    def _cli_version(self) -> Version:
        # dagster-dbt runs `dbt --version` to learn this, which imports dbt and asks the package
        # index for newer releases: 4 s per run. The installed package says the same.
        return Version(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        # The in-process adapter only serves column and row-count metadata, which we do not
        # fetch; building it imports dbt and parses every macro here: 2.5 s per run.
        return None

    @contextmanager
    def connected_to(self, database_url: str) -> Iterator[None]:
        """dagster-dbt hands dbt this process's environment: set the profile's variables meanwhile."""
        values = dbt_env(database_url)
        saved = {key: os.environ.get(key) for key in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def dbt_resource() -> Dbt:
    return Dbt(project_dir=os.fspath(DBT_PROJECT_DIR), dbt_executable=os.fspath(DBT_EXECUTABLE))
