"""A change of a supplier invoice's header logs each of its lines in app.mart_changes.

A line as the matching and the line views read it carries its invoice's kind, date and currency
(stg_app__supplier_invoice_lines). The change log of 0029 names a line when the line's own row
changes, not when its header does; dbt's int_matching_rule_changes found such lines by comparing
every line with the copy the candidates were computed from (15 s a build at 1,000,000 dossiers,
2.17 M lines). It now compares only the lines the log names (docs/dbt.md, "Changed lines from the
change log"), so an UPDATE of headers names their lines here. Committed invoices are immutable
(app.refuse_change), but a restore in replica mode is not: the trigger is ENABLE ALWAYS, like the
log's others. An INSERT has no lines yet (theirs are logged as they come); a DELETE removes the
lines first (they are logged by their own trigger); a TRUNCATE of the headers truncates the lines,
which logs `everything`; a bulk UPDATE past `backoffice.bulk_statement_rows` logs `everything`
(0030).

Revision ID: 0033
Revises: 0032
"""

from importlib import import_module

from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

BULK = import_module("backoffice.db.migrations.versions.0030_bulk_statements_log_everything").BULK

UPGRADE = f"""
CREATE FUNCTION app.log_invoice_header_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF {BULK.format(rows="new_rows")} THEN
        INSERT INTO app.mart_changes (everything) VALUES (true);
    ELSE
        INSERT INTO app.mart_changes (supplier_code, invoice_number, line_number)
        SELECT l.supplier_code, l.invoice_number, l.line_number
        FROM app.supplier_invoice_lines AS l
        WHERE (l.supplier_code, l.invoice_number) IN (
            SELECT supplier_code, invoice_number FROM new_rows
            UNION SELECT supplier_code, invoice_number FROM old_rows
        );
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER mart_changes_header_update AFTER UPDATE ON app.supplier_invoices
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app.log_invoice_header_changes();
ALTER TABLE app.supplier_invoices ENABLE ALWAYS TRIGGER mart_changes_header_update;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("DROP TRIGGER mart_changes_header_update ON app.supplier_invoices")
    op.execute("DROP FUNCTION app.log_invoice_header_changes()")
