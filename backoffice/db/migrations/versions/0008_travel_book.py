"""The travel book: a "complete" flag and a sending mode per dossier, the record of every sending,
and attachments for outbox mails.

`app.dossiers.travel_book_complete` and `travel_book_mode` are agent-edited state, guarded by the
dossier's `version` like the rest of it. Each sending of the book is a row of
`app.travel_book_sendings`, never updated nor deleted: who sent it, when, why, the outbox mail
that carries it and the exact document versions it carried (their ids, sorted). The same set of
versions is never sent twice for one dossier: the database refuses it (unique constraint).

An outbox mail's attachments are rows of `app.outbox_attachments`, holding the bytes themselves:
the mail is complete and unchangeable from the moment it is queued, whatever happens to the
document storage afterwards, and the sender needs nothing but the database.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE app.dossiers
    ADD COLUMN travel_book_complete boolean NOT NULL DEFAULT false,
    ADD COLUMN travel_book_mode     text    NOT NULL DEFAULT 'automatic'
        CHECK (travel_book_mode IN ('automatic', 'manual'));

CREATE TABLE app.outbox_attachments (
    mail_id    bigint  NOT NULL REFERENCES app.outbox_mails,
    position   integer NOT NULL CHECK (position >= 1),
    filename   text    NOT NULL CHECK (filename <> ''),
    media_type text    NOT NULL CHECK (media_type ~ '^[a-z]+/[a-z0-9.+-]+$'),
    size_bytes bigint  NOT NULL CHECK (size_bytes > 0),
    sha256     text    NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    data       bytea   NOT NULL CHECK (octet_length(data) = size_bytes),
    PRIMARY KEY (mail_id, position)
);
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.outbox_attachments
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();

CREATE TABLE app.travel_book_sendings (
    id                   bigserial   PRIMARY KEY,
    dossier_number       text        NOT NULL REFERENCES app.dossiers,
    sent_at              timestamptz NOT NULL DEFAULT now(),
    sent_by              text        NOT NULL,
    reason               text        NOT NULL CHECK (reason IN ('completed', 'manual', 'new_version')),
    -- Sorted ids of app.document_versions: the current version of each document when it was sent.
    document_version_ids bigint[]    NOT NULL CHECK (cardinality(document_version_ids) > 0),
    attached             boolean     NOT NULL,
    mail_id              bigint      NOT NULL UNIQUE REFERENCES app.outbox_mails,
    UNIQUE (dossier_number, document_version_ids)
);
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.travel_book_sendings
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
"""

DOWNGRADE = """
DROP TABLE app.travel_book_sendings;
DROP TABLE app.outbox_attachments;
ALTER TABLE app.dossiers DROP COLUMN travel_book_mode, DROP COLUMN travel_book_complete;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
