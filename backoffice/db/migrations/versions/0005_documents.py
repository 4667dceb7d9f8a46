"""Travel documents, kept in every version.

A document (a ticket, a voucher...) belongs to a dossier; each upload or replacement is a new
row of app.document_versions, never updated nor deleted, so who sent which file when, and its
SHA-256, stay provable. The bytes live in the documents storage under `stored_name`, a name
the application generates: the user's file name is only shown, never used as a path.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE app.documents (
    id             bigserial   PRIMARY KEY,
    dossier_number text        NOT NULL REFERENCES app.dossiers,
    title          text        NOT NULL CHECK (title <> ''),
    category       text        NOT NULL CHECK (category IN ('ticket', 'voucher', 'insurance', 'itinerary', 'other')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text        NOT NULL
);
CREATE INDEX documents_dossier ON app.documents (dossier_number);

CREATE TABLE app.document_versions (
    id                bigserial   PRIMARY KEY,
    document_id       bigint      NOT NULL REFERENCES app.documents,
    version           integer     NOT NULL CHECK (version >= 1),
    stored_name       text        NOT NULL UNIQUE CHECK (stored_name ~ '^[0-9a-f]{32}\.[a-z0-9]+$'),
    original_filename text        NOT NULL,
    media_type        text        NOT NULL,
    size_bytes        bigint      NOT NULL CHECK (size_bytes > 0),
    sha256            text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    uploaded_at       timestamptz NOT NULL DEFAULT now(),
    uploaded_by       text        NOT NULL,
    UNIQUE (document_id, version)
);

CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.document_versions
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
"""

DOWNGRADE = "DROP TABLE app.document_versions; DROP TABLE app.documents;"


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
