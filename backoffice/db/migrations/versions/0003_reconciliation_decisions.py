"""Accountants' reconciliation decisions on supplier invoice lines.

A decision says, for one invoice line, that it belongs to a dossier (`confirm` a suggestion,
or `manual` when the accountant picks the dossier, possibly several with an amount each to
split the line), or that it does not (`reject`: that line/dossier pair is never suggested
again). Decisions are records like invoices: never updated nor deleted; a later decision
names the one it replaces in `supersedes_id`, so the history of who decided what stays.

Revision ID: 0003
Revises: 0001
"""

from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE app.reconciliation_decisions (
    id              bigserial     PRIMARY KEY,
    supplier_code   text          NOT NULL,
    invoice_number  text          NOT NULL,
    line_number     integer       NOT NULL,
    decision        text          NOT NULL CHECK (decision IN ('confirm', 'reject', 'manual')),
    dossier_number  text          NOT NULL REFERENCES app.dossiers,
    -- Only for a manual split of one line over several dossiers: the part of this dossier,
    -- positive like the line itself (a credit note's kind gives the sign).
    amount_incl_tax numeric(14,2) CHECK (amount_incl_tax IS NULL OR decision = 'manual'),
    decided_by      text          NOT NULL,
    decided_at      timestamptz   NOT NULL DEFAULT now(),
    reason          text,
    supersedes_id   bigint        UNIQUE REFERENCES app.reconciliation_decisions,
    FOREIGN KEY (supplier_code, invoice_number, line_number) REFERENCES app.supplier_invoice_lines,
    CHECK (supersedes_id IS NULL OR supersedes_id < id)
);
CREATE INDEX reconciliation_decisions_line
    ON app.reconciliation_decisions (supplier_code, invoice_number, line_number);
CREATE INDEX reconciliation_decisions_dossier ON app.reconciliation_decisions (dossier_number);

CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.reconciliation_decisions
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
"""

DOWNGRADE = "DROP TABLE app.reconciliation_decisions;"


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
