"""A log of the dossiers whose matching inputs changed, kept by triggers, for incremental dbt builds.

The matching's per-dossier tables (dbt: int_matching_dossier_keys, int_matching_traveller_names,
int_matching_dossier_amounts) were rebuilt whole by every build, daily ones included, though a
day changes a few thousand dossiers of a million. Built incrementally, they recompute only the
dossiers named here (docs/dbt.md, "Incremental per-dossier tables").

The log is kept by the database, not by the writers: a statement that inserts, updates or
deletes rows of app.dossiers, app.services, app.travellers or app.price_lines adds one row per
dossier it touched (statement-level triggers with transition tables: one insert per statement,
whatever its size), even under `session_replication_role = replica` (ENABLE ALWAYS: bulk loads
and restores that silence other triggers). So no writer, present or future, can forget to say
what it changed. A TRUNCATE of one of them adds a row with `everything` set: the next build
recomputes every dossier.
Supplier invoice lines are not logged: the per-dossier tables do not read them.

dbt reads the log into a snapshot at the start of a build (int_matching_changes) and deletes the
snapshot's rows once every per-dossier table has applied them (int_matching_changes_applied), by
seq: a row committed during the build, whatever its seq, stays for the next one.

Revision ID: 0028
Revises: 0027
"""

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

LOGGED = ("dossiers", "services", "travellers", "price_lines")

UPGRADE = r"""
CREATE TABLE app.matching_changes (
    seq            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dossier_number text,
    everything     boolean     NOT NULL DEFAULT false,
    logged_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((dossier_number IS NULL) = everything)
);

-- One function for the four tables: each has a dossier_number column. new_rows / old_rows are
-- the statement's transition tables; a DELETE trigger has no new_rows, an INSERT one no old_rows.
CREATE FUNCTION app.log_matching_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO app.matching_changes (dossier_number) SELECT DISTINCT dossier_number FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO app.matching_changes (dossier_number)
        SELECT dossier_number FROM new_rows UNION SELECT dossier_number FROM old_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO app.matching_changes (dossier_number) SELECT DISTINCT dossier_number FROM old_rows;
    ELSE
        INSERT INTO app.matching_changes (everything) VALUES (true);
    END IF;
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE TRIGGER matching_changes_insert AFTER INSERT ON app.{t}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION app.log_matching_changes();
CREATE TRIGGER matching_changes_update AFTER UPDATE ON app.{t}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app.log_matching_changes();
CREATE TRIGGER matching_changes_delete AFTER DELETE ON app.{t}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION app.log_matching_changes();
CREATE TRIGGER matching_changes_truncate AFTER TRUNCATE ON app.{t}
    FOR EACH STATEMENT EXECUTE FUNCTION app.log_matching_changes();
-- Fired even under session_replication_role = replica (bulk loads and restores that silence the
-- other triggers, a logical replication subscriber): a write the log misses is a stale table.
ALTER TABLE app.{t} ENABLE ALWAYS TRIGGER matching_changes_insert;
ALTER TABLE app.{t} ENABLE ALWAYS TRIGGER matching_changes_update;
ALTER TABLE app.{t} ENABLE ALWAYS TRIGGER matching_changes_delete;
ALTER TABLE app.{t} ENABLE ALWAYS TRIGGER matching_changes_truncate;
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    for table in LOGGED:
        op.execute(TRIGGERS.format(t=table))
    # Everything written before the log existed: the first incremental build recomputes it all.
    op.execute("INSERT INTO app.matching_changes (everything) VALUES (true)")


def downgrade() -> None:
    for table in LOGGED:
        for event in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER matching_changes_{event} ON app.{table}")
    op.execute("DROP FUNCTION app.log_matching_changes()")
    op.execute("DROP TABLE app.matching_changes")
