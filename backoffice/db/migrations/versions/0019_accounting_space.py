"""Accountants' space: saved searches get a scope, so accountants keep named search lists over client
invoices and credit notes and over supplier invoices with the same mechanism agents use for dossiers.

`scope` is what a saved search searches: `dossiers` (every search saved before this migration),
`client_documents` or `supplier_invoices` (backoffice.queries.accounting_search). A name is unique
per owner and scope, so "À relancer" may exist once among dossiers and once among supplier invoices.

Revision ID: 0019
Revises: 0017
"""

from alembic import op

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE app.saved_searches
    ADD COLUMN scope text NOT NULL DEFAULT 'dossiers'
        CHECK (scope IN ('dossiers', 'client_documents', 'supplier_invoices'));
ALTER TABLE app.saved_searches DROP CONSTRAINT saved_searches_owner_id_name_key;
ALTER TABLE app.saved_searches ADD CONSTRAINT saved_searches_owner_scope_name_key UNIQUE (owner_id, scope, name);
-- The lists a user sees: their own and those shared with their role, per scope.
CREATE INDEX saved_searches_shared ON app.saved_searches (scope, shared_with_role) WHERE shared_with_role IS NOT NULL;
"""

# Back to one name per owner: a search of the new scopes cannot survive the downgrade.
DOWNGRADE = r"""
DROP INDEX app.saved_searches_shared;
DELETE FROM app.saved_searches WHERE scope <> 'dossiers';
ALTER TABLE app.saved_searches DROP CONSTRAINT saved_searches_owner_scope_name_key;
ALTER TABLE app.saved_searches ADD CONSTRAINT saved_searches_owner_id_name_key UNIQUE (owner_id, name);
ALTER TABLE app.saved_searches DROP COLUMN scope;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
