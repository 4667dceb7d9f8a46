"""Initial schema: raw (as delivered), app (operational), audit (append-only).

Money is numeric(14,2), never float. Price lines, payments, supplier invoices and audit events
are immutable: a trigger refuses UPDATE and DELETE, so a correction must be a new record.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS app;
CREATE SCHEMA IF NOT EXISTS audit;

-- unaccent() is only STABLE (it reads a dictionary); pinning the dictionary makes it safe to
-- declare IMMUTABLE, which indexes and generated columns need.
CREATE FUNCTION app.normalise_text(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN lower(public.unaccent('public.unaccent'::regdictionary, value));

CREATE FUNCTION app.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on %.% refused: committed records are immutable; record a correction instead',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END $$;

-- ---------------------------------------------------------------- raw: as delivered
CREATE TABLE raw.landing_files (
    source        text        NOT NULL,
    path          text        NOT NULL,
    sha256        text        NOT NULL,
    partition_date date       NOT NULL,
    bytes         bigint      NOT NULL,
    rows_loaded   integer     NOT NULL,
    rows_rejected integer     NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, path, sha256)
);

CREATE TABLE raw.booking_snapshots (
    dossier_number text        NOT NULL,
    version        integer     NOT NULL CHECK (version >= 1),
    updated_at     timestamptz NOT NULL,
    payload        jsonb       NOT NULL,
    file           text        NOT NULL,
    line           integer     NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dossier_number, version, updated_at)
);

CREATE TABLE raw.payments (
    payment_id         text          PRIMARY KEY,
    dossier_number     text,
    received_at        timestamptz   NOT NULL,
    method             text          NOT NULL,
    amount             numeric(14,2) NOT NULL,
    currency           char(3)       NOT NULL,
    status             text          NOT NULL,
    provider           text,
    provider_reference text,
    payer_name         text,
    file               text          NOT NULL,
    line               integer       NOT NULL,
    loaded_at          timestamptz   NOT NULL DEFAULT now()
);

CREATE TABLE raw.supplier_invoice_lines (
    supplier_code   text          NOT NULL,
    invoice_number  text          NOT NULL,
    line_number     integer       NOT NULL CHECK (line_number >= 1),
    kind            text          NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    invoice_date    date          NOT NULL,
    due_date        date,
    currency        char(3)       NOT NULL,
    reference       text,
    description     text,
    amount_excl_tax numeric(14,2) NOT NULL,
    vat_rate        numeric(6,4)  NOT NULL,
    amount_incl_tax numeric(14,2) NOT NULL,
    invoice_sha256  text          NOT NULL,
    file            text          NOT NULL,
    line            integer       NOT NULL,
    loaded_at       timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (supplier_code, invoice_number, line_number)
);

CREATE TABLE raw.suppliers (
    supplier_code      text PRIMARY KEY,
    name               text NOT NULL,
    country            char(2) NOT NULL,
    vat_number         text,
    iban               text,
    currency           char(3) NOT NULL,
    payment_terms_days integer NOT NULL,
    ledger_account     text NOT NULL,
    loaded_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE raw.rejections (
    id          bigserial   PRIMARY KEY,
    source      text        NOT NULL,
    file        text        NOT NULL,
    line        integer,
    record_key  text,
    reason      text        NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX rejections_once ON raw.rejections (source, file, coalesce(line, 0), reason);

-- ---------------------------------------------------------------- app: operational
CREATE TABLE app.suppliers (
    supplier_code      text PRIMARY KEY,
    name               text NOT NULL,
    country            char(2) NOT NULL,
    vat_number         text,
    iban               text,
    currency           char(3) NOT NULL,
    payment_terms_days integer NOT NULL DEFAULT 30,
    ledger_account     text NOT NULL
);

CREATE TABLE app.dossiers (
    dossier_number      text        PRIMARY KEY,
    platform_version    integer     NOT NULL,
    version             integer     NOT NULL DEFAULT 1,
    status              text        NOT NULL CHECK (status IN ('quote', 'option', 'confirmed', 'cancelled')),
    channel             text        NOT NULL CHECK (channel IN ('web', 'agency', 'call_center', 'partner')),
    brand               text        NOT NULL,
    agency_code         text,
    currency            char(3)     NOT NULL,
    departure_date      date        NOT NULL,
    return_date         date        NOT NULL CHECK (return_date >= departure_date),
    destination         text        NOT NULL,
    destination_country char(2)     NOT NULL,
    client_id           text        NOT NULL,
    client_title        text,
    client_first_name   text        NOT NULL,
    client_last_name    text        NOT NULL,
    client_email        text,
    client_phone        text,
    client_language     text        NOT NULL DEFAULT 'fr',
    client_address      jsonb,
    sale_total          numeric(14,2) NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    client_name_search  text GENERATED ALWAYS AS
        (app.normalise_text(client_last_name || ' ' || client_first_name)) STORED
);
CREATE INDEX dossiers_departure_status_brand ON app.dossiers (departure_date, status, brand);
CREATE INDEX dossiers_created_at ON app.dossiers (created_at);
CREATE INDEX dossiers_name_trgm ON app.dossiers USING gin (client_name_search gin_trgm_ops);
CREATE INDEX dossiers_email ON app.dossiers (lower(client_email));
CREATE INDEX dossiers_email_trgm ON app.dossiers USING gin (lower(client_email) gin_trgm_ops);
CREATE INDEX dossiers_destination_trgm ON app.dossiers USING gin (app.normalise_text(destination) gin_trgm_ops);
CREATE INDEX dossiers_number_trgm ON app.dossiers USING gin (dossier_number gin_trgm_ops);
CREATE INDEX dossiers_sale_total ON app.dossiers (sale_total);
CREATE INDEX dossiers_brand_channel ON app.dossiers (brand, channel);

CREATE TABLE app.travellers (
    dossier_number text NOT NULL REFERENCES app.dossiers ON DELETE CASCADE,
    traveller_id   text NOT NULL,
    first_name     text NOT NULL,
    last_name      text NOT NULL,
    birth_date     date,
    kind           text NOT NULL CHECK (kind IN ('adult', 'child', 'infant')),
    PRIMARY KEY (dossier_number, traveller_id)
);
CREATE INDEX travellers_name_trgm ON app.travellers USING gin (app.normalise_text(last_name) gin_trgm_ops);

CREATE TABLE app.services (
    dossier_number     text NOT NULL REFERENCES app.dossiers ON DELETE CASCADE,
    service_id         text NOT NULL,
    kind               text NOT NULL CHECK (kind IN
        ('flight', 'hotel', 'transfer', 'car', 'insurance', 'activity', 'cruise', 'package')),
    supplier_code      text NOT NULL,
    supplier_reference text,
    label              text NOT NULL,
    start_date         date,
    end_date           date,
    status             text NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    PRIMARY KEY (dossier_number, service_id)
);
CREATE INDEX services_supplier ON app.services (supplier_code, dossier_number);
CREATE INDEX services_supplier_reference ON app.services (upper(supplier_reference));

-- Every price line ever added to a dossier. Booking lines carry the platform version that
-- delivered them (the Devis shows those of the current version); lines added here carry their
-- origin and the record that caused them. Never updated: a reversal is a new line.
CREATE TABLE app.price_lines (
    id                   bigserial     PRIMARY KEY,
    dossier_number       text          NOT NULL REFERENCES app.dossiers,
    service_id           text,
    line_id              text          NOT NULL,
    origin               text          NOT NULL CHECK (origin IN
        ('booking', 'modification', 'regulation', 'adjustment', 'cancellation_fee')),
    booking_version      integer,
    label                text          NOT NULL,
    quantity             integer       NOT NULL CHECK (quantity >= 1),
    unit_sale_amount     numeric(14,2) NOT NULL,
    sale_currency        char(3)       NOT NULL,
    unit_purchase_amount numeric(14,2) NOT NULL,
    purchase_currency    char(3)       NOT NULL,
    vat_rate             numeric(6,4)  NOT NULL,
    sale_total           numeric(14,2) GENERATED ALWAYS AS (quantity * unit_sale_amount) STORED,
    purchase_total       numeric(14,2) GENERATED ALWAYS AS (quantity * unit_purchase_amount) STORED,
    supplier_code        text,
    source_type          text,
    source_id            text,
    reverses_id          bigint        REFERENCES app.price_lines,
    reason               text,
    created_at           timestamptz   NOT NULL DEFAULT now(),
    created_by           text          NOT NULL DEFAULT 'platform',
    CHECK ((origin = 'booking') = (booking_version IS NOT NULL))
);
CREATE UNIQUE INDEX price_lines_booking_key
    ON app.price_lines (dossier_number, booking_version, line_id) WHERE origin = 'booking';
CREATE INDEX price_lines_dossier ON app.price_lines (dossier_number);

CREATE TABLE app.payment_schedule (
    dossier_number text          NOT NULL REFERENCES app.dossiers ON DELETE CASCADE,
    seq            integer       NOT NULL,
    due_date       date          NOT NULL,
    amount         numeric(14,2) NOT NULL,
    kind           text          NOT NULL CHECK (kind IN ('deposit', 'balance', 'instalment')),
    method         text          NOT NULL CHECK (method IN ('card_on_file', 'transfer', 'manual')),
    PRIMARY KEY (dossier_number, seq)
);
CREATE INDEX payment_schedule_due ON app.payment_schedule (due_date);

CREATE TABLE app.payments (
    payment_id         text          PRIMARY KEY,
    -- no foreign key: a payment may land before its dossier, or name one we never got
    dossier_number     text,
    received_at        timestamptz   NOT NULL,
    method             text          NOT NULL CHECK (method IN
        ('card', 'transfer', 'gift_voucher', 'holiday_voucher', 'cheque', 'cash')),
    amount             numeric(14,2) NOT NULL,
    currency           char(3)       NOT NULL,
    status             text          NOT NULL CHECK (status IN ('captured', 'failed', 'refunded', 'chargeback')),
    provider           text,
    provider_reference text,
    payer_name         text,
    origin             text          NOT NULL DEFAULT 'ingestion' CHECK (origin IN ('ingestion', 'manual')),
    voucher_code       text,
    reason             text,
    created_by         text          NOT NULL DEFAULT 'platform',
    created_at         timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX payments_dossier ON app.payments (dossier_number);

CREATE TABLE app.supplier_invoices (
    supplier_code  text        NOT NULL,
    invoice_number text        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    invoice_date   date        NOT NULL,
    due_date       date,
    currency       char(3)     NOT NULL,
    sha256         text        NOT NULL,
    source_file    text        NOT NULL,
    origin         text        NOT NULL DEFAULT 'ingestion' CHECK (origin IN ('ingestion', 'manual')),
    received_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (supplier_code, invoice_number)
);

CREATE TABLE app.supplier_invoice_lines (
    supplier_code   text          NOT NULL,
    invoice_number  text          NOT NULL,
    line_number     integer       NOT NULL CHECK (line_number >= 1),
    reference       text,
    description     text,
    amount_excl_tax numeric(14,2) NOT NULL,
    vat_rate        numeric(6,4)  NOT NULL,
    amount_incl_tax numeric(14,2) NOT NULL,
    PRIMARY KEY (supplier_code, invoice_number, line_number),
    FOREIGN KEY (supplier_code, invoice_number) REFERENCES app.supplier_invoices
);
CREATE INDEX supplier_invoice_lines_reference_trgm
    ON app.supplier_invoice_lines USING gin (upper(reference) gin_trgm_ops);

-- Rights: roles map to permissions; an admin edits the mapping.
CREATE TABLE app.roles (
    role  text PRIMARY KEY,
    label text NOT NULL
);
CREATE TABLE app.permissions (
    permission  text PRIMARY KEY,
    description text NOT NULL
);
CREATE TABLE app.role_permissions (
    role       text NOT NULL REFERENCES app.roles,
    permission text NOT NULL REFERENCES app.permissions,
    PRIMARY KEY (role, permission)
);

CREATE TABLE app.users (
    id            bigserial   PRIMARY KEY,
    login         text        NOT NULL UNIQUE CHECK (login ~ '^[a-z0-9][a-z0-9._-]{1,63}$'),
    display_name  text        NOT NULL,
    password_hash text        NOT NULL,
    role          text        NOT NULL REFERENCES app.roles,
    locale        text        NOT NULL DEFAULT 'fr' CHECK (locale IN ('fr', 'en')),
    is_active     boolean     NOT NULL DEFAULT true,
    version       integer     NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Saved searches ("dossiers to process"): criteria as JSON, owned by a user, optionally shared
-- with a role. The built-in shortcuts live in code (backoffice.queries.shortcuts).
CREATE TABLE app.saved_searches (
    id              bigserial   PRIMARY KEY,
    owner_id        bigint      NOT NULL REFERENCES app.users,
    name            text        NOT NULL,
    criteria        jsonb       NOT NULL,
    shared_with_role text       REFERENCES app.roles,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, name)
);

-- Idempotency: the same key with the same request returns the first result.
CREATE TABLE app.idempotency_keys (
    key          text        PRIMARY KEY,
    action       text        NOT NULL,
    request_hash text        NOT NULL,
    result       jsonb,
    actor        text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- audit: append-only
CREATE TABLE audit.events (
    id             bigserial   PRIMARY KEY,
    occurred_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor          text        NOT NULL,
    action         text        NOT NULL,
    outcome        text        NOT NULL CHECK (outcome IN ('done', 'refused', 'failed')),
    dossier_number text,
    before         jsonb,
    after          jsonb,
    detail         text
);
CREATE INDEX audit_events_dossier ON audit.events (dossier_number, occurred_at);
CREATE INDEX audit_events_actor ON audit.events (actor, occurred_at);

CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.price_lines
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.payments
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.supplier_invoices
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.supplier_invoice_lines
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON audit.events
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();

-- ---------------------------------------------------------------- reference data
INSERT INTO app.roles (role, label) VALUES
    ('agent', 'Agent'), ('senior_agent', 'Senior agent'), ('accountant', 'Accountant'), ('admin', 'Administrator');

INSERT INTO app.permissions (permission, description) VALUES
    ('search_dossiers', 'Search and read dossiers'),
    ('record_modification', 'Record a client modification or cancellation'),
    ('validate_modification', 'Validate or refuse a modification'),
    ('regulation', 'Apply a supplier regulation to one dossier'),
    ('mass_regulation', 'Apply a supplier regulation to many dossiers at once'),
    ('price_adjustment', 'Add a manual sale or purchase line'),
    ('manage_documents', 'Upload travel documents and send the travel book'),
    ('record_payment', 'Record a manual payment'),
    ('refund', 'Refund a client'),
    ('approve_refund', 'Approve a large refund'),
    ('issue_invoice', 'Issue client invoices and credit notes'),
    ('reconcile', 'Register and reconcile supplier invoices'),
    ('write_off', 'Write off a supplier invoice difference'),
    ('export', 'Run and download the accounting export'),
    ('view_accounting', 'See the accounting space and dashboards'),
    ('share_searches', 'Share saved searches with a role'),
    ('manage_users', 'Manage users, roles and permissions');

INSERT INTO app.role_permissions (role, permission)
SELECT r.role, p.permission
FROM app.roles r CROSS JOIN app.permissions p
WHERE (r.role = 'agent' AND p.permission IN
        ('search_dossiers', 'record_modification', 'regulation', 'price_adjustment', 'manage_documents',
         'record_payment'))
   OR (r.role = 'senior_agent' AND p.permission IN
        ('search_dossiers', 'record_modification', 'validate_modification', 'regulation', 'mass_regulation',
         'price_adjustment', 'manage_documents', 'record_payment', 'refund', 'share_searches'))
   OR (r.role = 'accountant' AND p.permission IN
        ('search_dossiers', 'record_payment', 'refund', 'approve_refund', 'issue_invoice', 'reconcile',
         'write_off', 'export', 'view_accounting', 'share_searches'))
   OR r.role = 'admin';

"""

DOWNGRADE = """
DROP SCHEMA audit CASCADE;
DROP SCHEMA app CASCADE;
DROP SCHEMA raw CASCADE;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
