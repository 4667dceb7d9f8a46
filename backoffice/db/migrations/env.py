"""Alembic environment: online migrations only, URL given by backoffice.db.migrate."""

import sqlalchemy as sa
from alembic import context

url = context.config.get_main_option("sqlalchemy.url")
engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, version_table_schema="public", transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
