"""Where the database is, and the one way to get an engine on it."""

from __future__ import annotations

from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from backoffice.config import Settings, get_settings
from backoffice.db import embedded, roles


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached; the message is one line a person can act on."""


def normalise_url(url: str) -> str:
    """Accept the usual spellings of a PostgreSQL URL and pin the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a long text
        raise DatabaseUnavailable(f"DATABASE_URL is not a valid URL: {url!r}") from exc
    if parsed.get_backend_name() not in {"postgresql", "postgres"}:
        raise DatabaseUnavailable(
            f"DATABASE_URL must be a PostgreSQL URL (postgresql://...), not {parsed.get_backend_name()!r}"
        )
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def resolve_database_url(settings: Settings | None = None) -> str:
    """The URL in use: DATABASE_URL if set, else the embedded server (started if needed)."""
    settings = settings or get_settings()
    if settings.database_url:
        return normalise_url(settings.database_url)
    try:
        server, _ = embedded.ensure_running(settings.embedded_pgdata)
    except embedded.EmbeddedServerError as exc:
        raise DatabaseUnavailable(f"embedded PostgreSQL: {exc}") from exc
    return server.url()


def resolve_app_database_url(settings: Settings | None = None) -> str:
    """Where the application logs in: BACKOFFICE_APP_DATABASE_URL if set, else the owner's URL."""
    settings = settings or get_settings()
    if settings.app_database_url:
        return normalise_url(settings.app_database_url)
    return resolve_database_url(settings)


def create_engine(url: str, *, as_app: bool = True) -> Engine:
    """An engine on `url`; unless `as_app` is False its sessions act as the application's role."""
    connect_args = roles.app_connect_args() if as_app else {}
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect_args)


@lru_cache(maxsize=4)
def get_engine(url: str | None = None) -> Engine:
    """The process's engine for `url` (default: the configured database), acting as the application's role."""
    return create_engine(url or resolve_app_database_url())


def owner_engine(url: str | None = None) -> Engine:
    """An engine with the owner's full rights, for maintenance (tests' clean-up, tamper drills); not cached."""
    return create_engine(url or resolve_database_url(), as_app=False)


def check_connection(url: str) -> None:
    """Raise DatabaseUnavailable with a one-line reason if `url` cannot be used."""
    engine = create_engine(url, as_app=False)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        target = make_url(url)
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {target.host or 'localhost'}:{target.port or 5432}"
            f"/{target.database}: {reason}"
        ) from None
    finally:
        engine.dispose()
