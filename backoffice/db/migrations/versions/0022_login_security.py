"""Login throttling and server-side sessions.

app.login_attempts: one row per attempt to log in (or to change a one-time password), with its
outcome (`succeeded`, `failed`, `throttled`) and the client it came from when the app knows it;
`backoffice.services.sessions` counts the recent failures of a login and of a client from it.
Rows are kept as evidence; nothing in the product updates or deletes them.

app.sessions: one row per logged-in session. Only the SHA-256 of the session token is stored, so
a copy of the table opens no session. A session ends once (`ended_at`, `end_reason`): logged out,
idle or absolute timeout, account disabled or its password reset.

Revision ID: 0022
Revises: 0021
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE app.login_attempts (
    id            bigserial    PRIMARY KEY,
    login         text         NOT NULL,
    client        text,
    outcome       text         NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'throttled')),
    attempted_at  timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_login ON app.login_attempts (login, attempted_at);
CREATE INDEX login_attempts_client ON app.login_attempts (client, attempted_at) WHERE client IS NOT NULL;

CREATE TABLE app.sessions (
    id            bigserial    PRIMARY KEY,
    token_sha256  char(64)     NOT NULL UNIQUE,
    login         text         NOT NULL REFERENCES app.users (login),
    client        text,
    created_at    timestamptz  NOT NULL DEFAULT now(),
    last_seen_at  timestamptz  NOT NULL DEFAULT now(),
    ended_at      timestamptz,
    end_reason    text         CHECK (end_reason IN ('logged_out', 'idle', 'expired', 'account_closed')),
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
CREATE INDEX sessions_open ON app.sessions (login) WHERE ended_at IS NULL;

-- A session ends once: an ended row accepts no change, so "end" is never rewritten after the fact.
CREATE FUNCTION app.session_ends_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.ended_at IS NOT NULL THEN
        RAISE EXCEPTION 'session % has ended; it cannot change', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ends_once BEFORE UPDATE ON app.sessions
    FOR EACH ROW EXECUTE FUNCTION app.session_ends_once();
"""

DOWNGRADE = r"""
DROP TABLE app.sessions;
DROP FUNCTION app.session_ends_once();
DROP TABLE app.login_attempts;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
