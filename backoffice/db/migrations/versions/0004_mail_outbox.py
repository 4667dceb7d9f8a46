"""Mail outbox: a mail commits with the action that sends it; a sender delivers it later.

A mail's row changes state (pending → sent or failed) but is never deleted: the outbox is also
the record of what was sent to whom. The Message-ID is generated when the mail is queued, so
every delivery attempt of one mail carries the same id and a receiver can recognise a duplicate.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE app.outbox_mails (
    id              bigserial   PRIMARY KEY,
    kind            text        NOT NULL,
    language        text        NOT NULL CHECK (language IN ('fr', 'en')),
    to_address      text        NOT NULL,
    subject         text        NOT NULL,
    body_text       text        NOT NULL,
    body_html       text,
    dossier_number  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text        NOT NULL,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    sent_at         timestamptz CHECK ((state = 'sent') = (sent_at IS NOT NULL)),
    message_id      text        NOT NULL UNIQUE
);
-- The sender's query: due pending mails, oldest first.
CREATE INDEX outbox_mails_due ON app.outbox_mails (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_mails_dossier ON app.outbox_mails (dossier_number);

CREATE TRIGGER kept BEFORE DELETE ON app.outbox_mails
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();

INSERT INTO app.permissions (permission, description) VALUES
    ('view_outbox', 'See the mail outbox and send pending mails now');
INSERT INTO app.role_permissions (role, permission) VALUES
    ('senior_agent', 'view_outbox'), ('accountant', 'view_outbox'), ('admin', 'view_outbox');
"""

DOWNGRADE = """
DELETE FROM app.role_permissions WHERE permission = 'view_outbox';
DELETE FROM app.permissions WHERE permission = 'view_outbox';
DROP TABLE app.outbox_mails;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
