"""Client invoices and credit notes: gapless numbers, immutable documents, the PDF kept as issued.

A number comes from app.invoice_counters, one row per (brand, series, year), incremented in the
transaction that inserts the invoice: a rollback gives the number back, so the series has no gap,
and the row lock serialises issues of one series, so it has no duplicate. Never a sequence (a
sequence does not roll back). The counter also keeps the last issue date: a number is never dated
before the previous one.

Issued invoices, their lines and the PDF bytes (with their SHA-256) refuse UPDATE and DELETE; a
credit note citing the invoice is the only way to cancel it. The seller of each brand (or of every
brand, row '*') is reference data in app.invoice_sellers.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE app.invoice_sellers (
    brand        text PRIMARY KEY,  -- '*' is the seller of every brand without a row of its own
    legal_name   text NOT NULL,
    address_line text NOT NULL,
    postal_code  text NOT NULL,
    city         text NOT NULL,
    country      char(2) NOT NULL,
    vat_number   text NOT NULL,
    siren        text NOT NULL CHECK (siren ~ '^[0-9]{9}$'),
    licence      text  -- travel agency registration (Atout France IM number)
);
INSERT INTO app.invoice_sellers VALUES
    ('*', 'Voyages Démo SAS', '1 place de la Bourse', '75002', 'Paris', 'FR', 'FR00000000000', '000000000',
     'IM075000000');

CREATE TABLE app.invoice_counters (
    brand       text    NOT NULL,
    series      text    NOT NULL CHECK (series IN ('FA', 'AV')),
    year        integer NOT NULL,
    last_number integer NOT NULL CHECK (last_number >= 1),
    last_date   date    NOT NULL,
    PRIMARY KEY (brand, series, year)
);
-- A counter is updated in place (it is a position, not a record), but never deleted nor moved back.
CREATE FUNCTION app.counter_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.last_number <> OLD.last_number + 1 OR NEW.last_date < OLD.last_date
       OR (NEW.brand, NEW.series, NEW.year) IS DISTINCT FROM (OLD.brand, OLD.series, OLD.year) THEN
        RAISE EXCEPTION 'invoice counter %/%/% may only move forward by one, never back in time',
            OLD.brand, OLD.series, OLD.year USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER forward_only BEFORE UPDATE ON app.invoice_counters
    FOR EACH ROW EXECUTE FUNCTION app.counter_forward_only();
CREATE TRIGGER immutable BEFORE DELETE ON app.invoice_counters
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();

CREATE TABLE app.client_invoices (
    invoice_number   text          PRIMARY KEY,
    kind             text          NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    brand            text          NOT NULL,
    series           text          NOT NULL,
    year             integer       NOT NULL,
    seq              integer       NOT NULL CHECK (seq >= 1),
    issue_date       date          NOT NULL,
    dossier_number   text          NOT NULL REFERENCES app.dossiers,
    -- A credit note cites the invoice it credits; an invoice cites nothing.
    cited_invoice    text          REFERENCES app.client_invoices,
    reason           text,
    currency         char(3)       NOT NULL,
    -- Incl. VAT: under the travel agents' margin scheme no VAT is shown. As printed (a credit
    -- note's total is the positive amount credited).
    total_amount     numeric(14,2) NOT NULL,
    language         text          NOT NULL CHECK (language IN ('fr', 'en')),
    -- Who the document is addressed to and from, as they were at issue: the PDF is rebuilt from these.
    buyer            jsonb         NOT NULL,
    seller           jsonb         NOT NULL,
    xml_sha256       text          NOT NULL CHECK (xml_sha256 ~ '^[0-9a-f]{64}$'),
    pdf_sha256       text          NOT NULL CHECK (pdf_sha256 ~ '^[0-9a-f]{64}$'),
    pdf              bytea         NOT NULL,
    mail_id          bigint        REFERENCES app.outbox_mails,
    issued_at        timestamptz   NOT NULL DEFAULT now(),
    issued_by        text          NOT NULL,
    UNIQUE (brand, series, year, seq),
    CHECK ((kind = 'credit_note') = (cited_invoice IS NOT NULL)),
    CHECK ((kind = 'credit_note') = (series = 'AV')),
    CHECK (kind = 'invoice' OR coalesce(reason, '') <> ''),
    CHECK (extract(year FROM issue_date) = year)
);
CREATE INDEX client_invoices_dossier ON app.client_invoices (dossier_number, issued_at);

CREATE TABLE app.client_invoice_lines (
    invoice_number text          NOT NULL REFERENCES app.client_invoices,
    line_number    integer       NOT NULL CHECK (line_number >= 1),
    price_line_id  bigint        NOT NULL REFERENCES app.price_lines,
    label          text          NOT NULL,
    -- Signed: a line taken back on a complementary invoice has a negative quantity.
    quantity       integer       NOT NULL CHECK (quantity <> 0),
    unit_amount    numeric(14,2) NOT NULL,
    amount         numeric(14,2) GENERATED ALWAYS AS (quantity * unit_amount) STORED,
    PRIMARY KEY (invoice_number, line_number)
);
CREATE INDEX client_invoice_lines_price_line ON app.client_invoice_lines (price_line_id);

CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.client_invoices
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.client_invoice_lines
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
"""

DOWNGRADE = """
DROP TABLE app.client_invoice_lines;
DROP TABLE app.client_invoices;
DROP TABLE app.invoice_counters;
DROP FUNCTION app.counter_forward_only();
DROP TABLE app.invoice_sellers;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
