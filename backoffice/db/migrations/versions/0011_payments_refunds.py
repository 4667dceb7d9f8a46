"""Manual payments, attribution of orphan payments, and refunds with a second person's approval.

app.payments stays immutable. A manual payment is a new row (origin `manual`, id `MAN-<n>` so
it never collides with a provider's id). A refund is a new row too: negative amount, status
`refunded`, origin `refund`, pointing at the payment it refunds in `refund_of`.

A payment that landed without a dossier (or naming one we do not have) cannot be updated to
name one: the agent's decision is a row of app.payment_attributions (one per payment, never
updated), and every reader of "paid on a dossier" takes the attributed dossier first.

A refund request is a row of app.refunds. Above the approval threshold it waits in
`pending_approval` (no money moves, but its amount is reserved) until another person approves
(`executed`, with the refund payment) or refuses it (`refused`); the trigger allows only those
transitions and nothing else, and refuses DELETE.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE SEQUENCE app.manual_payment_number;

ALTER TABLE app.payments ADD COLUMN refund_of text REFERENCES app.payments (payment_id);
ALTER TABLE app.payments DROP CONSTRAINT payments_origin_check;
ALTER TABLE app.payments ADD CONSTRAINT payments_origin_check CHECK (origin IN ('ingestion', 'manual', 'refund'));
ALTER TABLE app.payments ADD CONSTRAINT payments_refund_shape
    CHECK ((origin = 'refund') = (refund_of IS NOT NULL)
           AND (origin <> 'refund' OR (amount < 0 AND status = 'refunded')));
ALTER TABLE app.payments ADD CONSTRAINT payments_manual_shape
    CHECK (origin <> 'manual' OR (amount > 0 AND status = 'captured'));
CREATE INDEX payments_refund_of ON app.payments (refund_of) WHERE refund_of IS NOT NULL;
-- The queue of payments waiting for a dossier reads these.
CREATE INDEX payments_without_dossier ON app.payments (received_at) WHERE dossier_number IS NULL;

CREATE TABLE app.payment_attributions (
    payment_id     text        PRIMARY KEY REFERENCES app.payments,
    dossier_number text        NOT NULL REFERENCES app.dossiers,
    reason         text        NOT NULL CHECK (reason <> ''),
    attributed_by  text        NOT NULL,
    attributed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_attributions_dossier ON app.payment_attributions (dossier_number);
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.payment_attributions
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();

CREATE TABLE app.refunds (
    id                bigserial     PRIMARY KEY,
    dossier_number    text          NOT NULL REFERENCES app.dossiers,
    payment_id        text          NOT NULL REFERENCES app.payments,
    amount            numeric(14,2) NOT NULL CHECK (amount > 0),
    currency          char(3)       NOT NULL,
    method            text          NOT NULL CHECK (method IN ('card', 'transfer')),
    reason            text          NOT NULL CHECK (reason <> ''),
    state             text          NOT NULL CHECK (state IN ('pending_approval', 'executed', 'refused')),
    requested_by      text          NOT NULL,
    requested_at      timestamptz   NOT NULL DEFAULT now(),
    -- The second person, for a refund that needed approval; null for one executed at once.
    decided_by        text          CHECK (decided_by <> requested_by),
    decided_at        timestamptz,
    decision_note     text,
    refund_payment_id text          UNIQUE REFERENCES app.payments,
    CHECK ((state = 'executed') = (refund_payment_id IS NOT NULL)),
    CHECK ((state = 'pending_approval') = (decided_at IS NULL)),
    CHECK (state <> 'refused' OR decided_by IS NOT NULL)
);
CREATE INDEX refunds_dossier ON app.refunds (dossier_number, state);
CREATE INDEX refunds_payment ON app.refunds (payment_id);
CREATE INDEX refunds_pending ON app.refunds (requested_at) WHERE state = 'pending_approval';

CREATE FUNCTION app.refund_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.state <> 'pending_approval' OR NEW.state = 'pending_approval'
       OR (NEW.id, NEW.dossier_number, NEW.payment_id, NEW.amount, NEW.currency, NEW.method, NEW.reason,
           NEW.requested_by, NEW.requested_at)
          IS DISTINCT FROM
          (OLD.id, OLD.dossier_number, OLD.payment_id, OLD.amount, OLD.currency, OLD.method, OLD.reason,
           OLD.requested_by, OLD.requested_at) THEN
        RAISE EXCEPTION '% on app.refunds refused: a refund request is only approved or refused once', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER decided_once BEFORE UPDATE OR DELETE ON app.refunds
    FOR EACH ROW EXECUTE FUNCTION app.refund_transition();

-- Every payment under the dossier it counts for: the attributed one if an agent chose it, else
-- the one it arrived with. The one definition of "paid on a dossier" for services, queries and
-- search. Two branches rather than a coalesce, so a filter on dossier_number uses the index of
-- either table.
CREATE VIEW app.dossier_payments AS
    SELECT p.payment_id, p.dossier_number, p.received_at, p.method, p.amount, p.currency, p.status,
           p.provider, p.provider_reference, p.payer_name, p.origin, p.voucher_code, p.reason,
           p.created_by, p.created_at, p.refund_of
    FROM app.payments p
    WHERE NOT EXISTS (SELECT 1 FROM app.payment_attributions a WHERE a.payment_id = p.payment_id)
    UNION ALL
    SELECT p.payment_id, a.dossier_number, p.received_at, p.method, p.amount, p.currency, p.status,
           p.provider, p.provider_reference, p.payer_name, p.origin, p.voucher_code, p.reason,
           p.created_by, p.created_at, p.refund_of
    FROM app.payment_attributions a JOIN app.payments p ON p.payment_id = a.payment_id;
"""

DOWNGRADE = """
DROP VIEW app.dossier_payments;
DROP TABLE app.refunds;
DROP FUNCTION app.refund_transition();
DROP TABLE app.payment_attributions;
DROP INDEX app.payments_without_dossier;
DROP INDEX app.payments_refund_of;
ALTER TABLE app.payments DROP CONSTRAINT payments_manual_shape;
ALTER TABLE app.payments DROP CONSTRAINT payments_refund_shape;
ALTER TABLE app.payments DROP CONSTRAINT payments_origin_check;
ALTER TABLE app.payments ADD CONSTRAINT payments_origin_check CHECK (origin IN ('ingestion', 'manual'));
ALTER TABLE app.payments DROP COLUMN refund_of;
DROP SEQUENCE app.manual_payment_number;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
