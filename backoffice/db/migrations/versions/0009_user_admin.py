"""User administration: a password an admin reset must be changed at the next login, and roles
carry a version so that two admins editing the permission matrix cannot overwrite each other.

New roles are created from the Admin page; their names follow the same pattern as the four seeded ones.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE app.users ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;
ALTER TABLE app.roles ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE app.roles ADD CONSTRAINT roles_role_format CHECK (role ~ '^[a-z][a-z0-9_]{1,31}$');
ALTER TABLE app.roles ADD CONSTRAINT roles_label_present CHECK (label <> '');
"""

DOWNGRADE = """
ALTER TABLE app.roles DROP CONSTRAINT roles_label_present;
ALTER TABLE app.roles DROP CONSTRAINT roles_role_format;
ALTER TABLE app.roles DROP COLUMN version;
ALTER TABLE app.users DROP COLUMN must_change_password;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
