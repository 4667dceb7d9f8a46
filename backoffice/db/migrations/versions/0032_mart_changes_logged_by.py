"""The change log also names the dossiers a dbt build's own matching moved a line away from or to.

The billing figures of a dossier change without any write naming it when the matching gives one of
its supplier invoice lines to another dossier (a new dossier now holds the number, a new name or
amount ranks first). Since the candidates are incremental by line (int_matching_dirty_lines), the
build knows which lines it recomputed: it compares their first candidate before and after and logs
the dossiers of the lines that moved in app.mart_changes, marked with the build's invocation id,
in the same transaction as the candidates. The build's incremental copies (int_search__*,
int_margin__actual_costs) then recompute those dossiers with the ones the triggers logged; the
accountants' searches read them live until the copies are rebuilt; int_mart_changes_applied
deletes them with the snapshot's rows once the build succeeded, and a failed build leaves them for
the next one (docs/dbt.md, "Incremental copies of the billing figures").

The triggers' rows leave logged_by null.

Revision ID: 0032
Revises: 0031
"""

from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE app.mart_changes ADD COLUMN logged_by text")


def downgrade() -> None:
    op.execute("ALTER TABLE app.mart_changes DROP COLUMN logged_by")
