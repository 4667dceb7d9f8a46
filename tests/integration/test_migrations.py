"""Migrations bring an empty database to the full schema, and records meant to stay are protected."""

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from backoffice.db.migrate import current_revision, migrate


def test_migrations_up_from_empty(database_url: str) -> None:
    admin = sa.create_engine(
        make_url(database_url).set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    fresh = make_url(database_url).set(database=make_url(database_url).database + "_fresh")
    fresh_url = fresh.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{fresh.database}"'))
    try:
        assert current_revision(fresh_url) is None
        migrate(fresh_url)
        assert current_revision(fresh_url) is not None
        engine = sa.create_engine(fresh_url)
        with engine.connect() as conn:
            schemas = set(conn.execute(sa.text("SELECT nspname FROM pg_namespace")).scalars())
            tables = set(
                conn.execute(
                    sa.text(
                        "SELECT schemaname||'.'||tablename FROM pg_tables WHERE schemaname IN ('raw','app','audit')"
                    )
                ).scalars()
            )
        engine.dispose()
        assert {"raw", "app", "audit"} <= schemas
        for table in (
            "app.dossiers",
            "app.travellers",
            "app.services",
            "app.price_lines",
            "app.payments",
            "app.supplier_invoices",
            "app.supplier_invoice_lines",
            "app.users",
            "app.roles",
            "app.saved_searches",
            "audit.events",
            "raw.rejections",
            "raw.booking_snapshots",
        ):
            assert table in tables
        migrate(fresh_url)  # a second run is a no-op
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{fresh.database}" WITH (FORCE)'))
        admin.dispose()


def test_money_columns_are_numeric_14_2(db: sa.Engine) -> None:
    with db.connect() as conn:
        types = conn.execute(
            sa.text(
                """SELECT table_schema||'.'||table_name||'.'||column_name, data_type, numeric_precision, numeric_scale
                   FROM information_schema.columns
                   WHERE table_schema IN ('raw','app') AND (column_name LIKE '%amount%' OR column_name LIKE '%total')"""
            )
        ).all()
    assert types
    for name, data_type, precision, scale in types:
        assert (data_type, precision, scale) == ("numeric", 14, 2), name


def test_audit_events_refuse_update_and_delete(db: sa.Engine) -> None:
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO audit.events (actor, action, outcome) VALUES ('a', 'x', 'done')"))
    for statement in ("UPDATE audit.events SET actor = 'b'", "DELETE FROM audit.events"):
        with pytest.raises(sa.exc.IntegrityError, match="immutable"), db.begin() as conn:
            conn.execute(sa.text(statement))
