"""The reconciliation workbench: undoing a decision, and indexes for the accountants' filters.

`unmatch` is the decision that undoes the ones in force on a line: one `unmatch` row supersedes
each of them (supersedes_id is unique, so a split over three dossiers takes three), and the line
goes back to what automatic matching proposes. Like every decision it is never updated nor deleted.

Indexes: the workbench filters lines by supplier, invoice date and amount and pages through them
in key order; supplier_invoices (supplier_code, invoice_date) and the lines' amount serve those.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE app.reconciliation_decisions DROP CONSTRAINT reconciliation_decisions_decision_check;
ALTER TABLE app.reconciliation_decisions ADD CONSTRAINT reconciliation_decisions_decision_check
    CHECK (decision IN ('confirm', 'reject', 'manual', 'unmatch'));
-- An unmatch always replaces a decision; the others may start a line's history.
ALTER TABLE app.reconciliation_decisions ADD CONSTRAINT reconciliation_decisions_unmatch_supersedes
    CHECK (decision <> 'unmatch' OR supersedes_id IS NOT NULL);

CREATE INDEX supplier_invoices_supplier_date ON app.supplier_invoices (supplier_code, invoice_date);
CREATE INDEX supplier_invoices_date ON app.supplier_invoices (invoice_date);
CREATE INDEX supplier_invoice_lines_amount ON app.supplier_invoice_lines (amount_incl_tax);
"""

DOWNGRADE = """
DROP INDEX app.supplier_invoice_lines_amount;
DROP INDEX app.supplier_invoices_date;
DROP INDEX app.supplier_invoices_supplier_date;
ALTER TABLE app.reconciliation_decisions DROP CONSTRAINT reconciliation_decisions_unmatch_supersedes;
ALTER TABLE app.reconciliation_decisions DROP CONSTRAINT reconciliation_decisions_decision_check;
ALTER TABLE app.reconciliation_decisions ADD CONSTRAINT reconciliation_decisions_decision_check
    CHECK (decision IN ('confirm', 'reject', 'manual'));
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
