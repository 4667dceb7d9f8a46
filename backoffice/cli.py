"""The `backoffice` command (shared/contracts/cli.md).

Every command exits 0 on success and non-zero with a one-line reason on stderr otherwise:
domain errors and an unreachable database are reasons, not tracebacks.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from backoffice.db.engine import DatabaseUnavailable
from backoffice.domain.errors import DomainError

app = typer.Typer(help="Travel back-office: database, data, pipeline and demo.", no_args_is_help=True)
users_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
pipeline_app = typer.Typer(help="Run the daily pipeline (Dagster, in this process).", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def reasons_not_tracebacks(func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (DatabaseUnavailable, DomainError) as exc:
            _fail(str(exc))

    return wrapper


def _parse_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"{field}: {value!r} is not a date (YYYY-MM-DD)")


def database_ready() -> str:
    """Reachable and migrated; returns the URL in use."""
    from backoffice.db.engine import check_connection, resolve_database_url
    from backoffice.db.migrate import migrate

    url = resolve_database_url()
    check_connection(url)
    migrate(url)
    return url


@app.command()
@reasons_not_tracebacks
def up() -> None:
    """Make sure the database is reachable and migrated; print the DATABASE_URL in use."""
    url = database_ready()
    typer.echo(url)


@app.command()
@reasons_not_tracebacks
def generate(
    out: Annotated[Path, typer.Option(help="Landing folder to write")],
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD")],
    days: Annotated[int, typer.Option(min=1, help="Number of days")] = 30,
    dossiers_per_day: Annotated[int, typer.Option(min=1, help="New dossiers per day")] = 50,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files)")] = 42,
) -> None:
    """Write synthetic landing files (and ground truth) for N days, deterministic for a seed."""
    from backoffice.generator import generate as run_generator

    first = _parse_date(start, "--start")
    with _progress("generating", days) as advance:
        summary = run_generator(out, first, days, dossiers_per_day, seed, progress=advance)
    typer.echo(f"wrote {summary} to {out}")


class _progress:
    """A bar on a terminal, plain lines otherwise (logs, CI)."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total = label, total
        self._bar: Any = None

    def __enter__(self) -> Callable[..., None]:
        if sys.stderr.isatty():
            from rich.progress import Progress

            self._bar = Progress(transient=True)
            self._bar.start()
            task = self._bar.add_task(self.label, total=self.total)
            return lambda done, total, note="": self._bar.update(
                task, completed=done, total=total, description=f"{self.label} {note}".strip()
            )
        return lambda done, total, note="": typer.echo(f"{self.label}: {done}/{total} {note}".rstrip(), err=True)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


@app.command()
@reasons_not_tracebacks
def demo() -> None:
    """Database, demo data through the pipeline, demo accounts, then the app and the Dagster UI."""
    from backoffice import demo as demo_steps
    from backoffice.config import get_settings
    from backoffice.db import embedded

    settings = get_settings()
    started_here = False
    if settings.database_url is None:
        _, started_here = embedded.ensure_running(settings.embedded_pgdata)
    try:
        url = database_ready()
        typer.echo(f"database: {url.split('@')[-1]}")
        demo_steps.load_demo_data(settings, typer.echo)
        demo_steps.create_demo_accounts(typer.echo)
        demo_steps.serve(url, typer.echo)
    finally:
        if started_here:
            embedded.stop(settings.embedded_pgdata)
            typer.echo("embedded PostgreSQL stopped")


@users_app.command("add")
@reasons_not_tracebacks
def users_add(
    login: str,
    role: Annotated[str, typer.Option(help="agent, senior_agent, accountant or admin")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    locale: Annotated[str, typer.Option(help="fr or en")] = "fr",
) -> None:
    """Create an account (the password is asked for, or read from stdin)."""
    from backoffice.db.engine import get_engine
    from backoffice.services.unit_of_work import UnitOfWork
    from backoffice.services.users import add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    database_ready()
    with UnitOfWork(get_engine()) as uow:
        user = add_user(uow, None, login, role, password, display_name=name, locale=locale)
    typer.echo(f"created {user.login} ({user.role})")


@users_app.command("list")
@reasons_not_tracebacks
def users_list() -> None:
    """List accounts."""
    from backoffice.db.engine import get_engine
    from backoffice.services.unit_of_work import UnitOfWork
    from backoffice.services.users import list_users

    database_ready()
    with UnitOfWork(get_engine()) as uow:
        for user in list_users(uow):
            state = "active" if user.is_active else "disabled"
            typer.echo(f"{user.login}\t{user.role}\t{user.locale}\t{state}")


@pipeline_app.command("run")
@reasons_not_tracebacks
def pipeline_run(
    day: Annotated[str | None, typer.Option("--date", help="The day to run, YYYY-MM-DD")] = None,
    first: Annotated[str | None, typer.Option("--from", help="First day of a range, YYYY-MM-DD")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last day of the range (default: --from)")] = None,
) -> None:
    """Run day partitions through Dagster in this process: ingest, quality checks, balance charges, dbt build."""
    import contextlib
    import io

    if (day is None) == (first is None):
        _fail("give either --date or --from (with --to for a range)")
    if last is not None and first is None:
        _fail("--to needs --from")
    start = _parse_date(day, "--date") if day is not None else _parse_date(str(first), "--from")
    end = _parse_date(last, "--to") if last else start
    database_ready()
    # Dagster is imported here, not at the top: it costs seconds every other command would pay.
    from pipelines.run import PipelineFailed, run_days

    # dagster-dbt echoes every dbt event on stdout; the summary below is what this command prints.
    try:
        with _progress("pipeline", (end - start).days + 1) as advance, contextlib.redirect_stdout(io.StringIO()):
            summary = run_days(start, end, progress=advance)
    except PipelineFailed as exc:
        _fail(str(exc))
    for line in summary.lines():
        typer.echo(line)


@app.command("export")
@reasons_not_tracebacks
def export(
    day: Annotated[str, typer.Option("--date", help="The day to export, YYYY-MM-DD")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder (default: the configured delivery, BACKOFFICE_EXPORT_DELIVERY)")
    ] = None,
) -> None:
    """Write (or re-write, byte-identical) the accounting export of a day: FEC, CSV, Parquet, manifest."""
    from backoffice.config import get_settings
    from backoffice.db.engine import get_engine
    from backoffice.export.delivery import LocalDirectory, configured
    from backoffice.services.exports import SYSTEM_EXPORTER, export_day
    from backoffice.services.unit_of_work import UnitOfWork

    when = _parse_date(day, "--date")
    url = database_ready()
    with UnitOfWork(get_engine(url)) as uow:
        delivery = LocalDirectory(out) if out is not None else configured(get_settings())
        result = export_day(uow, SYSTEM_EXPORTER, when, delivery)
    for line in result.summary_lines():
        typer.echo(line)


@app.command()
@reasons_not_tracebacks
def verify() -> None:
    """Recompute the hash chains of the audit log and the issued invoices; exit 1 at a broken link."""
    from backoffice.db.engine import get_engine
    from backoffice.integrity import verify as verify_chains

    database_ready()
    reports = verify_chains(get_engine())
    for report in reports:
        typer.echo(report.summary())
    broken = [str(report.broken) for report in reports if report.broken is not None]
    if broken:
        _fail("hash chain broken: " + "; ".join(broken))


if __name__ == "__main__":
    app()
