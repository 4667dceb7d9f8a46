"""Saved searches carry a version, so an edit made from a stale page is refused instead of lost.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """ALTER TABLE app.saved_searches
               ADD COLUMN version integer NOT NULL DEFAULT 1,
               ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now()"""
    )


def downgrade() -> None:
    op.execute("ALTER TABLE app.saved_searches DROP COLUMN version, DROP COLUMN updated_at")
