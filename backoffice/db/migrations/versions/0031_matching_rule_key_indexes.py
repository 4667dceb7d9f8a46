"""Indexes on the keys the matching's two rules look up: a dossier's number and a service's
supplier reference, both normalised as the rules compare them (upper case, letters and digits only).

The rules (dbt macro `matching_rule_ctes`) find, for an invoice line's reference, the dossier whose
number it holds and the services of the line's supplier whose booking reference it is. A build
that recomputes some lines only (the incremental candidates, `int_matching_rule_changes`) computed
every dossier's and every service's normalised key to merge-join them with those lines: at
1,000,000 dossiers, 1 M regular expressions and 2.95 M more, then a sort of each, ~16 s per model
for a few thousand lines (docs/dbt.md, "Incremental open amounts"). With these indexes each line's
keys are looked up. The expressions are the macro's, to the character: PostgreSQL uses an
expression index only for the same expression.

Revision ID: 0031
Revises: 0030
"""

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

DOSSIER_KEY = "upper(regexp_replace(dossier_number, '[^A-Za-z0-9]', '', 'g'))"
REFERENCE_KEY = "upper(regexp_replace(supplier_reference, '[^A-Za-z0-9]', '', 'g'))"


def upgrade() -> None:
    op.execute(f"CREATE INDEX dossiers_number_key ON app.dossiers (({DOSSIER_KEY}))")
    op.execute(f"CREATE INDEX services_supplier_reference_key ON app.services (supplier_code, ({REFERENCE_KEY}))")


def downgrade() -> None:
    op.execute("DROP INDEX app.services_supplier_reference_key")
    op.execute("DROP INDEX app.dossiers_number_key")
