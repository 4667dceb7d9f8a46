"""Supplier contacts: where a supplier's mails go, kept by people, not by the reference file.

The suppliers reference (landing `reference/suppliers.csv`) carries no address, so an agent enters
it; ingestion's upsert never touches `email` or `language`. `contact_version` guards the edit
(ingestion does not bump it: it changes other columns). `manage_suppliers` is the permission.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE app.suppliers ADD COLUMN contact_version integer NOT NULL DEFAULT 1;
INSERT INTO app.permissions (permission, description)
    VALUES ('manage_suppliers', 'Edit the suppliers'' contact addresses');
INSERT INTO app.role_permissions (role, permission)
    SELECT role, 'manage_suppliers' FROM app.roles WHERE role IN ('senior_agent', 'accountant', 'admin');
"""

DOWNGRADE = """
DELETE FROM app.role_permissions WHERE permission = 'manage_suppliers';
DELETE FROM app.permissions WHERE permission = 'manage_suppliers';
ALTER TABLE app.suppliers DROP COLUMN contact_version;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
