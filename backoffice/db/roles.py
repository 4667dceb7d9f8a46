"""The database roles: the owner runs migrations, dbt and maintenance; the application works as
`backoffice_app`, which may read and write what the services write but holds no DDL, no TRUNCATE
and no UPDATE or DELETE on the immutable tables (migration 0021, docs/integrity.md).

Two ways in. With BACKOFFICE_APP_DATABASE_URL the application logs in as a user of its own, a
member of `backoffice_app`; without it, it logs in with DATABASE_URL (the owner, e.g. the embedded
server's superuser) and takes `backoffice_app` as its role at connection start-up. Either way every
unit of work also runs under SET LOCAL ROLE, so a service never acts with more than the role.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

APP_ROLE = "backoffice_app"


def app_connect_args() -> dict[str, str]:
    """libpq start-up options that make a session act as the application's role from its first query."""
    return {"options": f"-c role={APP_ROLE}"}


def act_as_app(conn: Connection) -> None:
    """Inside a transaction: act as the application's role until it ends (owner sessions included)."""
    conn.execute(sa.text(f"SET LOCAL ROLE {APP_ROLE}"))


def refresh_grants(conn: Connection) -> None:
    """Re-apply the role's rights (tables of migrations after 0021); a no-op before 0021."""
    if conn.execute(sa.text("SELECT to_regprocedure('app.grant_app_privileges()')")).scalar() is not None:
        conn.execute(sa.text("SELECT app.grant_app_privileges()"))
