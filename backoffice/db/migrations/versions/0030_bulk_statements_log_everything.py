"""A statement writing more rows than `backoffice.bulk_statement_rows` (default 500,000) logs
`everything` in app.matching_changes and app.mart_changes instead of one row per dossier or line.

The change logs of 0028 and 0029 add one row per dossier (or invoice line) a statement touched.
A bulk load (the first import from another back-office, a restore, the bench's million-dossier
dataset) logged ~10 M rows that way, and the first build after it spent 116 s deleting them once
applied (int_mart_changes_applied, 1M bench, 2026-11-27), to recompute and check every dossier,
which it does anyway past the builds' thresholds (more than 100,000 dossiers for the matching's
tables, more than 10 % of the dossiers for the checks). Past the limit one `everything` row says
the same. A day's writes stay far below it (a day's bookings, a mass regulation of 10,000
dossiers); a session may lower it (`SET backoffice.bulk_statement_rows = 10`: the tests do).

Revision ID: 0030
Revises: 0029
"""

from importlib import import_module

from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

# Whether the statement's transition table holds more rows than the limit: reads at most limit + 1
# of them. {rows} is new_rows or old_rows (PL/pgSQL plans a statement when it first runs it, so a
# DELETE trigger never plans the new_rows form).
BULK = """EXISTS (SELECT 1 FROM {rows} OFFSET coalesce(
                 nullif(current_setting('backoffice.bulk_statement_rows', true), '')::bigint, 500000))"""

# Whether the statement wrote more rows than the limit. Each transition table is read in an
# assignment of its own: PL/pgSQL plans an expression when it first runs it, and an INSERT trigger
# has no old_rows, a DELETE one no new_rows. A TRUNCATE has neither, and empties the table.
BULK_CHECK = f"""
    bulk boolean := TG_OP = 'TRUNCATE';
BEGIN
    IF TG_OP = 'DELETE' THEN
        bulk := {BULK.format(rows="old_rows")};
    ELSIF TG_OP IN ('INSERT', 'UPDATE') THEN
        bulk := {BULK.format(rows="new_rows")};
    END IF;"""

UPGRADE = f"""
CREATE OR REPLACE FUNCTION app.log_matching_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE{BULK_CHECK}
    IF bulk THEN
        INSERT INTO app.matching_changes (everything) VALUES (true);
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO app.matching_changes (dossier_number) SELECT DISTINCT dossier_number FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO app.matching_changes (dossier_number)
        SELECT dossier_number FROM new_rows UNION SELECT dossier_number FROM old_rows;
    ELSE
        INSERT INTO app.matching_changes (dossier_number) SELECT DISTINCT dossier_number FROM old_rows;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION app.log_mart_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE{BULK_CHECK}
    IF bulk THEN
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


def _created_function(migration: str) -> str:
    """The CREATE FUNCTION statement of an earlier migration's UPGRADE, as CREATE OR REPLACE."""
    upgrade = import_module(f"backoffice.db.migrations.versions.{migration}").UPGRADE
    body = upgrade[upgrade.index("CREATE FUNCTION") :]
    return body[: body.index("END $$;") + len("END $$;")].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(_created_function("0028_matching_changes"))
    op.execute(_created_function("0029_mart_changes"))
