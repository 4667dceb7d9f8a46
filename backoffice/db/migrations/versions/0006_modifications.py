"""Modifications and cancellations: a client's request, recorded by an agent, decided by a senior agent.

A request is `pending` and changes nothing on the Devis; its lines (to add, to cancel, fees) wait
in app.modification_request_lines, which are never updated nor deleted. Validation writes them
as price lines (source_type 'modification_request', source_id = the request's id); refusal
keeps who and why. Once decided, a request can no longer change (a trigger refuses it), and no
request is ever deleted. `dossier_version` is the dossier's version when the request was
recorded: validation is refused if the dossier changed since.

Suppliers get a contact address and language for the mails a validated request sends them;
the supplier reference file does not carry them, so they are empty until someone fills them.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE app.suppliers
    ADD COLUMN email    text,
    ADD COLUMN language text NOT NULL DEFAULT 'fr' CHECK (language IN ('fr', 'en'));

CREATE TABLE app.modification_requests (
    id              bigserial     PRIMARY KEY,
    dossier_number  text          NOT NULL REFERENCES app.dossiers,
    kind            text          NOT NULL CHECK (kind IN ('dates', 'travellers', 'services', 'cancellation')),
    description     text          NOT NULL CHECK (description <> ''),
    state           text          NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'validated', 'refused')),
    version         integer       NOT NULL DEFAULT 1,
    dossier_version integer       NOT NULL,
    recorded_by     text          NOT NULL,
    recorded_at     timestamptz   NOT NULL DEFAULT now(),
    decided_by      text,
    decided_at      timestamptz,
    refusal_reason  text,
    -- Set at validation: the dossier's sale total after it, and for a cancellation the refund due.
    sale_total_after numeric(14,2),
    refund_due      numeric(14,2) CHECK (refund_due >= 0),
    -- Recipients a validation could not mail (no or bad address), each with why.
    unmailed        jsonb         NOT NULL DEFAULT '[]',
    CHECK ((state = 'pending') = (decided_by IS NULL) AND (state = 'pending') = (decided_at IS NULL)),
    CHECK ((state = 'refused') = (refusal_reason IS NOT NULL)),
    CHECK ((state = 'validated') = (sale_total_after IS NOT NULL)),
    CHECK ((state = 'validated' AND kind = 'cancellation') = (refund_due IS NOT NULL))
);
CREATE INDEX modification_requests_dossier ON app.modification_requests (dossier_number, id);
CREATE INDEX modification_requests_pending ON app.modification_requests (recorded_at) WHERE state = 'pending';

-- 'add' and 'fee' carry the line to write; 'cancel' names the price line to reverse.
CREATE TABLE app.modification_request_lines (
    request_id           bigint        NOT NULL REFERENCES app.modification_requests,
    seq                  integer       NOT NULL CHECK (seq >= 1),
    action               text          NOT NULL CHECK (action IN ('add', 'cancel', 'fee')),
    cancels_line_id      bigint        REFERENCES app.price_lines,
    service_id           text,
    label                text,
    quantity             integer       CHECK (quantity >= 1),
    unit_sale_amount     numeric(14,2),
    unit_purchase_amount numeric(14,2),
    purchase_currency    char(3),
    vat_rate             numeric(6,4),
    PRIMARY KEY (request_id, seq),
    CHECK ((action = 'cancel') = (cancels_line_id IS NOT NULL)),
    CHECK (action = 'cancel' OR (label IS NOT NULL AND quantity IS NOT NULL AND unit_sale_amount IS NOT NULL
                                 AND unit_purchase_amount IS NOT NULL AND purchase_currency IS NOT NULL
                                 AND vat_rate IS NOT NULL))
);

CREATE FUNCTION app.refuse_decided_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state <> 'pending' THEN
        RAISE EXCEPTION 'modification request % is %: a decided request cannot change', OLD.id, OLD.state
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER decided BEFORE UPDATE ON app.modification_requests
    FOR EACH ROW EXECUTE FUNCTION app.refuse_decided_change();
CREATE TRIGGER kept BEFORE DELETE ON app.modification_requests
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.modification_request_lines
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
"""

DOWNGRADE = """
DROP TABLE app.modification_request_lines;
DROP TABLE app.modification_requests;
DROP FUNCTION app.refuse_decided_change();
ALTER TABLE app.suppliers DROP COLUMN email, DROP COLUMN language;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
