"""Automatic balance charges: every attempt to charge a card on file, and what it gave.

An attempt row is committed in state `pending` before the provider is called, then decided once
(`captured` with the payment it created, or `declined` with the provider's reason); the trigger
allows only that transition and refuses DELETE. At most one attempt of a schedule item is
pending and at most one captured (partial unique indexes): a due item is never charged twice.

A captured charge is also an app.payments row, origin `automatic_charge` (card, captured, a
positive amount): the origin CHECK of 0011 is replaced to admit it, its other CHECKs stay.

app.provider_simulator_charges is the built-in simulator's own book (backoffice.providers):
the keys it was given and what it answered, so a repeated key returns the first outcome.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE app.payments DROP CONSTRAINT payments_origin_check;
ALTER TABLE app.payments ADD CONSTRAINT payments_origin_check
    CHECK (origin IN ('ingestion', 'manual', 'refund', 'automatic_charge'));
ALTER TABLE app.payments ADD CONSTRAINT payments_automatic_shape
    CHECK (origin <> 'automatic_charge' OR (amount > 0 AND status = 'captured' AND method = 'card'));

CREATE TABLE app.balance_charge_attempts (
    id                 bigserial     PRIMARY KEY,
    dossier_number     text          NOT NULL REFERENCES app.dossiers,
    seq                integer       NOT NULL,
    attempt_no         integer       NOT NULL CHECK (attempt_no >= 1),
    attempted_on       date          NOT NULL,
    -- 'schedule': the daily run; 'agent': "retry the charge now" in the app.
    trigger            text          NOT NULL CHECK (trigger IN ('schedule', 'agent')),
    requested_by       text          NOT NULL,
    amount             numeric(14,2) NOT NULL CHECK (amount > 0),
    currency           char(3)       NOT NULL,
    provider           text          NOT NULL,
    provider_key       text          NOT NULL UNIQUE,
    state              text          NOT NULL CHECK (state IN ('pending', 'captured', 'declined')),
    provider_reference text,
    decline_reason     text,
    retryable          boolean,
    payment_id         text          UNIQUE REFERENCES app.payments,
    mail_id            bigint        REFERENCES app.outbox_mails,
    created_at         timestamptz   NOT NULL DEFAULT now(),
    decided_at         timestamptz,
    UNIQUE (dossier_number, seq, attempt_no),
    CHECK ((state = 'pending') = (decided_at IS NULL)),
    CHECK ((state = 'captured') = (payment_id IS NOT NULL AND provider_reference IS NOT NULL)),
    CHECK ((state = 'declined') = (decline_reason IS NOT NULL AND retryable IS NOT NULL)),
    CHECK (state = 'declined' OR mail_id IS NULL)
);
CREATE UNIQUE INDEX balance_charge_attempts_one_capture
    ON app.balance_charge_attempts (dossier_number, seq) WHERE state = 'captured';
CREATE UNIQUE INDEX balance_charge_attempts_one_pending
    ON app.balance_charge_attempts (dossier_number, seq) WHERE state = 'pending';

CREATE FUNCTION app.balance_charge_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.state <> 'pending' OR NEW.state = 'pending'
       OR (NEW.id, NEW.dossier_number, NEW.seq, NEW.attempt_no, NEW.attempted_on, NEW.trigger, NEW.requested_by,
           NEW.amount, NEW.currency, NEW.provider, NEW.provider_key, NEW.created_at)
          IS DISTINCT FROM
          (OLD.id, OLD.dossier_number, OLD.seq, OLD.attempt_no, OLD.attempted_on, OLD.trigger, OLD.requested_by,
           OLD.amount, OLD.currency, OLD.provider, OLD.provider_key, OLD.created_at) THEN
        RAISE EXCEPTION '% on app.balance_charge_attempts refused: an attempt is decided once, then immutable', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER decided_once BEFORE UPDATE OR DELETE ON app.balance_charge_attempts
    FOR EACH ROW EXECUTE FUNCTION app.balance_charge_transition();

CREATE TABLE app.provider_simulator_charges (
    idempotency_key text          PRIMARY KEY,
    dossier_number  text          NOT NULL,
    amount          numeric(14,2) NOT NULL,
    currency        char(3)       NOT NULL,
    outcome         text          NOT NULL CHECK (outcome IN ('captured', 'declined')),
    reference       text,
    decline_reason  text,
    retryable       boolean,
    charged_at      timestamptz   NOT NULL DEFAULT now()
);
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.provider_simulator_charges
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
"""

DOWNGRADE = """
DROP TABLE app.provider_simulator_charges;
DROP TABLE app.balance_charge_attempts;
DROP FUNCTION app.balance_charge_transition();
ALTER TABLE app.payments DROP CONSTRAINT payments_automatic_shape;
ALTER TABLE app.payments DROP CONSTRAINT payments_origin_check;
ALTER TABLE app.payments ADD CONSTRAINT payments_origin_check CHECK (origin IN ('ingestion', 'manual', 'refund'));
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
