"""Write-offs of supplier invoice differences; accountants may turn a difference into a regulation;
an `unmatch` may withdraw an automatic match.

`app.write_offs`: one row per difference an accountant wrote off for a (dossier, supplier): the
amount (invoiced - expected, signed, what was left after the write-offs already in force), the
invoiced and expected amounts it came from, the currency, the reason, who, when and the threshold
in force. Immutable like every money record: an undo is a new row with the opposite amount that
names the one it reverses (`reverses_id`, unique: a write-off is undone once). dbt reads it for the
billing status (a written-off difference is settled) and posts an OD entry per row.

Accountants get the `regulation` permission: the workbench turns an over- or under-invoiced
difference into a supplier regulation on the dossier.

An `unmatch` decision used to always supersede a decision; one with no `supersedes_id` now says
"do not match this line automatically to its dossier any more" (the line's automatic match is
withdrawn; it names that dossier), so the constraint of 0015 goes.

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE app.write_offs (
    id               bigserial     PRIMARY KEY,
    dossier_number   text          NOT NULL REFERENCES app.dossiers,
    supplier_code    text          NOT NULL,
    -- invoiced - expected: positive when the supplier invoiced more than the Devis expects.
    amount           numeric(14,2) NOT NULL CHECK (amount <> 0),
    invoiced_amount  numeric(14,2) NOT NULL,
    expected_amount  numeric(14,2) NOT NULL,
    currency         char(3)       NOT NULL,
    threshold        numeric(14,2) NOT NULL CHECK (threshold >= 0),
    reason           text          NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    created_by       text          NOT NULL,
    created_at       timestamptz   NOT NULL DEFAULT now(),
    reverses_id      bigint        UNIQUE REFERENCES app.write_offs,
    CHECK (reverses_id IS NULL OR reverses_id < id),
    -- An undo may exceed today's threshold (it only cancels); a write-off may not.
    CHECK (reverses_id IS NOT NULL OR abs(amount) <= threshold)
);
CREATE INDEX write_offs_dossier_supplier ON app.write_offs (dossier_number, supplier_code);

CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.write_offs
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();

INSERT INTO app.role_permissions (role, permission) VALUES ('accountant', 'regulation')
    ON CONFLICT DO NOTHING;

ALTER TABLE app.reconciliation_decisions DROP CONSTRAINT reconciliation_decisions_unmatch_supersedes;
"""

DOWNGRADE = r"""
-- Decisions are immutable: withdrawals already recorded stay (the constraint checks new rows only).
ALTER TABLE app.reconciliation_decisions ADD CONSTRAINT reconciliation_decisions_unmatch_supersedes
    CHECK (decision <> 'unmatch' OR supersedes_id IS NOT NULL) NOT VALID;
DELETE FROM app.role_permissions WHERE role = 'accountant' AND permission = 'regulation';
DROP TABLE app.write_offs;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
