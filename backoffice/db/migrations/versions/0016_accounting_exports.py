"""Accounting exports: one row per exported day, and the entries each export carried.

app.accounting_exports holds what a day's export wrote (format, each file's name, SHA-256 and size,
counts, debit/credit totals per journal, the manifest); app.exported_entries names the entries it
carried. The primary key of app.exported_entries is the entry itself (journal, fiscal year,
number): the database refuses to export an entry twice. Both tables are immutable: a re-run of a
day regenerates its files from these rows, it never rewrites them.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE app.accounting_exports (
    id              text          PRIMARY KEY,
    export_date     date          NOT NULL UNIQUE,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    created_by      text          NOT NULL,
    separator       text          NOT NULL CHECK (separator IN ('tab', 'pipe')),
    encoding        text          NOT NULL CHECK (encoding IN ('iso-8859-15', 'utf-8')),
    fec_name        text          NOT NULL,
    fec_sha256      char(64)      NOT NULL,
    fec_bytes       bigint        NOT NULL,
    csv_name        text          NOT NULL,
    csv_sha256      char(64)      NOT NULL,
    csv_bytes       bigint        NOT NULL,
    parquet_name    text          NOT NULL,
    parquet_sha256  char(64)      NOT NULL,
    parquet_bytes   bigint        NOT NULL,
    manifest_sha256 char(64)      NOT NULL,
    entry_count     integer       NOT NULL CHECK (entry_count >= 0),
    line_count      integer       NOT NULL CHECK (line_count >= 0),
    totals          jsonb         NOT NULL,
    manifest        jsonb         NOT NULL
);

CREATE TABLE app.exported_entries (
    export_id     text     NOT NULL REFERENCES app.accounting_exports,
    journal_code  text     NOT NULL,
    fiscal_year   integer  NOT NULL,
    entry_number  integer  NOT NULL,
    PRIMARY KEY (journal_code, fiscal_year, entry_number)
);
CREATE INDEX exported_entries_export ON app.exported_entries (export_id);

CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.accounting_exports
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.exported_entries
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
"""

DOWNGRADE = """
DROP TABLE app.exported_entries;
DROP TABLE app.accounting_exports;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
