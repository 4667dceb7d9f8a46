"""A log of the dossiers whose published figures may have changed, kept by triggers, so that a
daily dbt build checks those dossiers' rows of the per-dossier views instead of every dossier's.

The views' column rules (dbt's `rows_hold` tests) read a whole view: at 100,000 dossiers the
per-dossier views' checks took ~45 s of a 133 s daily build, and grow with the dossiers held, not
with the day's changes (docs/dbt.md, "Daily checks of the changed dossiers"). A daily build now
checks the dossiers named here; a full build (`--full-refresh`) checks them all.

Kept like app.matching_changes (0028): statement-level triggers with transition tables, one insert
per statement whatever its size, ENABLE ALWAYS so replica-mode loads are logged too; a TRUNCATE
logs `everything`. The tables are every app table a per-dossier view reads: a row names its
dossier; a supplier invoice line or an accountant's decision names the line (its dossiers are the
one the matching gives it and those its decisions name, read by the build: a confirmation takes
the line away from the dossier it was matched to as well). Payments without a dossier are not logged: no
dossier's figures hold them. The build deletes the rows it checked once the checks passed
(int_mart_changes_applied): a failed check is run again by the next build.

Revision ID: 0029
Revises: 0028
"""

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

BY_DOSSIER = (
    "dossiers",
    "services",
    "travellers",
    "price_lines",
    "payments",
    "payment_attributions",
    "payment_schedule",
    "client_invoices",
    "write_offs",
)
# Logged by line: a decision moves a line away from the dossier it was matched to as well.
BY_LINE = ("supplier_invoice_lines", "reconciliation_decisions")
LOGGED = (*BY_DOSSIER, *BY_LINE)

UPGRADE = r"""
CREATE TABLE app.mart_changes (
    seq            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dossier_number text,
    supplier_code  text,
    invoice_number text,
    line_number    integer,
    everything     boolean     NOT NULL DEFAULT false,
    logged_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (everything = (dossier_number IS NULL AND invoice_number IS NULL))
);

-- new_rows / old_rows are the statement's transition tables; a DELETE trigger has no new_rows, an
-- INSERT one no old_rows (PL/pgSQL plans a statement when it first runs it).
CREATE FUNCTION app.log_mart_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO app.mart_changes (everything) VALUES (true);
    ELSIF TG_TABLE_NAME IN ('supplier_invoice_lines', 'reconciliation_decisions') THEN
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO app.mart_changes (supplier_code, invoice_number, line_number)
            SELECT DISTINCT supplier_code, invoice_number, line_number FROM new_rows;
        END IF;
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            INSERT INTO app.mart_changes (supplier_code, invoice_number, line_number)
            SELECT DISTINCT supplier_code, invoice_number, line_number FROM old_rows;
        END IF;
    ELSE
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO app.mart_changes (dossier_number)
            SELECT DISTINCT dossier_number FROM new_rows WHERE dossier_number IS NOT NULL;
        END IF;
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            INSERT INTO app.mart_changes (dossier_number)
            SELECT DISTINCT dossier_number FROM old_rows WHERE dossier_number IS NOT NULL;
        END IF;
    END IF;
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE TRIGGER mart_changes_insert AFTER INSERT ON app.{t}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION app.log_mart_changes();
CREATE TRIGGER mart_changes_update AFTER UPDATE ON app.{t}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app.log_mart_changes();
CREATE TRIGGER mart_changes_delete AFTER DELETE ON app.{t}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION app.log_mart_changes();
CREATE TRIGGER mart_changes_truncate AFTER TRUNCATE ON app.{t}
    FOR EACH STATEMENT EXECUTE FUNCTION app.log_mart_changes();
ALTER TABLE app.{t} ENABLE ALWAYS TRIGGER mart_changes_insert;
ALTER TABLE app.{t} ENABLE ALWAYS TRIGGER mart_changes_update;
ALTER TABLE app.{t} ENABLE ALWAYS TRIGGER mart_changes_delete;
ALTER TABLE app.{t} ENABLE ALWAYS TRIGGER mart_changes_truncate;
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    for table in LOGGED:
        op.execute(TRIGGERS.format(t=table))
    # Everything written before the log existed: the first daily build checks every dossier.
    op.execute("INSERT INTO app.mart_changes (everything) VALUES (true)")


def downgrade() -> None:
    for table in LOGGED:
        for event in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER mart_changes_{event} ON app.{table}")
    op.execute("DROP FUNCTION app.log_mart_changes()")
    op.execute("DROP TABLE app.mart_changes")
