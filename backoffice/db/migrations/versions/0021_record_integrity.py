"""Integrity of records: a least-privilege role for the application, hash chains, closed periods.

`backoffice_app` (NOLOGIN) is the role the application works as (see backoffice/db/roles.py and
docs/integrity.md): DML on raw and app, only SELECT and INSERT on audit, SELECT on dbt's schemas,
no DDL, no TRUNCATE, and no UPDATE or DELETE on any table an `immutable` trigger protects. The
grants are applied by `app.grant_app_privileges()`, which `backoffice.db.migrate.migrate` calls
again after every upgrade, so tables of later migrations are covered the same way (default
privileges give them DML; the function then withdraws what their immutability triggers refuse).

audit.events and app.client_invoices are hash-chained: `hash` = SHA-256 of `prev_hash` followed by
a canonical text of the row (for an invoice, with its lines). A deferred constraint trigger seals
each new row at commit, under the chain's head row lock in audit.chain_heads, so concurrent
transactions chain linearly in commit order and the lock is held only for the commit, not for
the whole transaction. `backoffice verify` (backoffice/integrity.py) recomputes the chains.

app.closed_periods: a day, month or year an accountant closed. A trigger refuses any posting dated
in a closed period (payments and refunds, client invoices and credit notes, supplier invoices,
write-offs), with SQLSTATE BOC01 that services turn into PeriodClosed.

Revision ID: 0021
Revises: 0020
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- ---------------------------------------------------------------- the application's role
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'backoffice_app') THEN
        BEGIN
            CREATE ROLE backoffice_app NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database of the same server created it at the same moment
        END;
    END IF;
    -- The owner must be able to SET ROLE to it (a superuser always can).
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT backoffice_app TO %I', current_user);
    END IF;
END $$;

CREATE FUNCTION app.grant_app_privileges() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    s text;
    t record;
BEGIN
    EXECUTE 'GRANT USAGE ON SCHEMA raw, app, audit TO backoffice_app';
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA raw, app TO backoffice_app';
    EXECUTE 'GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA audit TO backoffice_app';
    EXECUTE 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA raw, app, audit TO backoffice_app';
    -- Only the sealing functions move a chain's head.
    EXECUTE 'REVOKE INSERT ON audit.chain_heads FROM backoffice_app';
    -- dbt's schemas, built by dbt as the owner. Their tables are derived data dbt rebuilds, which
    -- two services maintain between builds (the export marks marts.accounting_entries.exported_in,
    -- supplier invoice registration refreshes intermediate.int_matching_candidates): DML, no more.
    FOR s IN SELECT nspname FROM pg_namespace WHERE nspname IN ('staging', 'intermediate', 'marts', 'reference') LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO backoffice_app', s);
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO backoffice_app', s);
    END LOOP;
    EXECUTE 'GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA staging, intermediate, marts TO backoffice_app';
    -- What an immutability trigger refuses, the role may not even attempt.
    FOR t IN SELECT tg.tgrelid::regclass AS rel,
                    bool_or((tg.tgtype & 16) <> 0) AS on_update,
                    bool_or((tg.tgtype & 8) <> 0) AS on_delete
             FROM pg_trigger tg
             WHERE NOT tg.tgisinternal
               AND tg.tgfoid IN ('app.refuse_change'::regproc, 'app.refuse_change_unless_sealing'::regproc)
             GROUP BY tg.tgrelid LOOP
        IF t.on_update THEN
            EXECUTE format('REVOKE UPDATE ON %s FROM backoffice_app', t.rel);
        END IF;
        IF t.on_delete THEN
            EXECUTE format('REVOKE DELETE ON %s FROM backoffice_app', t.rel);
        END IF;
    END LOOP;
    -- SELECT ... FOR UPDATE needs UPDATE on one column: the reconciliation locks the invoice line
    -- it decides on and an undo locks its regulation. The triggers still refuse any real update.
    EXECUTE 'GRANT UPDATE (line_number) ON app.supplier_invoice_lines TO backoffice_app';
    EXECUTE 'GRANT UPDATE (id) ON app.regulations TO backoffice_app';
END $$;
REVOKE ALL ON FUNCTION app.grant_app_privileges() FROM PUBLIC;

-- Tables and sequences the owner creates later (later migrations, dbt) start with the same rights.
ALTER DEFAULT PRIVILEGES IN SCHEMA raw, app GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO backoffice_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA audit GRANT SELECT, INSERT ON TABLES TO backoffice_app;
-- dbt creates its schemas if missing; created here, they can carry default privileges of their own.
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS intermediate;
CREATE SCHEMA IF NOT EXISTS marts;
CREATE SCHEMA IF NOT EXISTS reference;
ALTER DEFAULT PRIVILEGES IN SCHEMA staging, intermediate, marts
    GRANT INSERT, UPDATE, DELETE ON TABLES TO backoffice_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA raw, app, audit GRANT USAGE, SELECT ON SEQUENCES TO backoffice_app;
ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO backoffice_app;
ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO backoffice_app;

-- ---------------------------------------------------------------- hash chains
CREATE TABLE audit.chain_heads (
    chain text   PRIMARY KEY CHECK (chain IN ('audit.events', 'app.client_invoices')),
    seq   bigint NOT NULL CHECK (seq >= 0),
    hash  text   NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);

ALTER TABLE audit.events
    ADD COLUMN chain_seq bigint UNIQUE,
    ADD COLUMN prev_hash text CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    ADD COLUMN hash      text CHECK (hash ~ '^[0-9a-f]{64}$');
ALTER TABLE app.client_invoices
    ADD COLUMN chain_seq bigint UNIQUE,
    ADD COLUMN prev_hash text CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    ADD COLUMN hash      text CHECK (hash ~ '^[0-9a-f]{64}$');

-- The canonical texts. backoffice/integrity.py holds its own copy of these expressions on
-- purpose: the verifier does not trust functions stored in the database it checks.
CREATE FUNCTION audit.event_canonical(e audit.events) RETURNS text LANGUAGE sql STABLE
    RETURN jsonb_build_array(
        e.id, to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), e.actor, e.action,
        e.outcome, e.dossier_number, e.before, e.after, e.detail)::text;

CREATE FUNCTION app.client_invoice_canonical(i app.client_invoices) RETURNS text LANGUAGE sql STABLE
    RETURN jsonb_build_array(
        i.invoice_number, i.kind, i.brand, i.series, i.year, i.seq, i.issue_date, i.dossier_number,
        i.cited_invoice, i.reason, i.currency, i.total_amount, i.language, i.buyer, i.seller, i.xml_sha256,
        i.pdf_sha256, i.mail_id, to_char(i.issued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
        i.issued_by,
        (SELECT coalesce(jsonb_agg(jsonb_build_array(l.line_number, l.price_line_id, l.label, l.quantity,
                                                     l.unit_amount) ORDER BY l.line_number), '[]'::jsonb)
         FROM app.client_invoice_lines l WHERE l.invoice_number = i.invoice_number))::text;

-- An immutable row may be updated once, by the sealing function, to receive its place in the chain.
CREATE FUNCTION app.refuse_change_unless_sealing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('backoffice.sealing', true) = 'on' AND OLD.hash IS NULL
       AND to_jsonb(NEW) - ARRAY['chain_seq', 'prev_hash', 'hash']
           = to_jsonb(OLD) - ARRAY['chain_seq', 'prev_hash', 'hash']
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on %.% refused: committed records are immutable; record a correction instead',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END $$;

-- Takes the chain's head (row lock until commit), links the row to it, moves the head.
CREATE FUNCTION audit.next_link(p_chain text, p_canonical text, OUT seq bigint, OUT prev_hash text, OUT hash text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO audit.chain_heads AS h (chain, seq, hash) VALUES (p_chain, 0, repeat('0', 64))
        ON CONFLICT (chain) DO UPDATE SET seq = h.seq
        RETURNING h.seq, h.hash INTO seq, prev_hash;
    seq := seq + 1;
    hash := encode(sha256(convert_to(prev_hash || p_canonical, 'UTF8')), 'hex');
    UPDATE audit.chain_heads SET seq = next_link.seq, hash = next_link.hash WHERE chain = p_chain;
END $$;

CREATE FUNCTION audit.seal_event(p_id bigint) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e audit.events;
    link record;
BEGIN
    SELECT * INTO e FROM audit.events WHERE id = p_id;
    IF e.hash IS NOT NULL THEN
        RETURN;
    END IF;
    link := audit.next_link('audit.events', audit.event_canonical(e));
    PERFORM set_config('backoffice.sealing', 'on', true);
    UPDATE audit.events SET chain_seq = link.seq, prev_hash = link.prev_hash, hash = link.hash WHERE id = p_id;
    PERFORM set_config('backoffice.sealing', 'off', true);
END $$;

CREATE FUNCTION audit.seal_client_invoice(p_number text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    i app.client_invoices;
    link record;
BEGIN
    SELECT * INTO i FROM app.client_invoices WHERE invoice_number = p_number;
    IF i.hash IS NOT NULL THEN
        RETURN;
    END IF;
    link := audit.next_link('app.client_invoices', app.client_invoice_canonical(i));
    PERFORM set_config('backoffice.sealing', 'on', true);
    UPDATE app.client_invoices SET chain_seq = link.seq, prev_hash = link.prev_hash, hash = link.hash
        WHERE invoice_number = p_number;
    PERFORM set_config('backoffice.sealing', 'off', true);
END $$;

CREATE FUNCTION audit.seal_new_row() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'events' THEN
        PERFORM audit.seal_event(NEW.id);
    ELSE
        PERFORM audit.seal_client_invoice(NEW.invoice_number);
    END IF;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION audit.next_link(text, text), audit.seal_event(bigint), audit.seal_client_invoice(text),
    audit.seal_new_row() FROM PUBLIC;

DROP TRIGGER immutable ON audit.events;
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON audit.events
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change_unless_sealing();
DROP TRIGGER immutable ON app.client_invoices;
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.client_invoices
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change_unless_sealing();

-- Rows already there are chained in the order they were written.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT id FROM audit.events ORDER BY id LOOP
        PERFORM audit.seal_event(r.id);
    END LOOP;
    FOR r IN SELECT invoice_number FROM app.client_invoices ORDER BY issued_at, invoice_number LOOP
        PERFORM audit.seal_client_invoice(r.invoice_number);
    END LOOP;
END $$;

-- Sealed at commit: the head is locked for the commit only, and an invoice's lines are there.
CREATE CONSTRAINT TRIGGER chain AFTER INSERT ON audit.events DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION audit.seal_new_row();
CREATE CONSTRAINT TRIGGER chain AFTER INSERT ON app.client_invoices DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION audit.seal_new_row();

-- ---------------------------------------------------------------- closed periods
CREATE TABLE app.closed_periods (
    id           bigserial   PRIMARY KEY,
    granularity  text        NOT NULL CHECK (granularity IN ('day', 'month', 'year')),
    period_start date        NOT NULL,
    period_end   date        NOT NULL,
    closed_by    text        NOT NULL,
    closed_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (granularity, period_start),
    CHECK (period_end >= period_start),
    CHECK (granularity <> 'day' OR period_end = period_start),
    CHECK (granularity <> 'month' OR (extract(day FROM period_start) = 1
                                      AND period_end = (period_start + interval '1 month - 1 day')::date)),
    CHECK (granularity <> 'year' OR (extract(doy FROM period_start) = 1
                                     AND period_end = (period_start + interval '1 year - 1 day')::date))
);
CREATE INDEX closed_periods_span ON app.closed_periods (period_start, period_end);
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.closed_periods
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();

INSERT INTO app.permissions (permission, description)
    VALUES ('close_period', 'Close an accounting day, month or year') ON CONFLICT DO NOTHING;
INSERT INTO app.role_permissions (role, permission)
    VALUES ('accountant', 'close_period'), ('admin', 'close_period') ON CONFLICT DO NOTHING;

-- The date a row is posted on, as the accounting entries (dbt) date it.
CREATE FUNCTION app.refuse_closed_posting() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    posted date;
    closed app.closed_periods;
BEGIN
    -- One branch per table: PL/pgSQL resolves NEW's fields only in the branch it runs.
    IF TG_TABLE_NAME = 'payments' THEN
        posted := (NEW.received_at AT TIME ZONE 'Europe/Paris')::date;
    ELSIF TG_TABLE_NAME = 'client_invoices' THEN
        posted := NEW.issue_date;
    ELSIF TG_TABLE_NAME = 'supplier_invoices' THEN
        posted := NEW.invoice_date;
    ELSE
        posted := (NEW.created_at AT TIME ZONE 'Europe/Paris')::date;
    END IF;
    SELECT * INTO closed FROM app.closed_periods
        WHERE posted BETWEEN period_start AND period_end
        ORDER BY period_end - period_start DESC, period_start LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'posting on % refused: the % % is closed; record it in the next open period',
            posted, closed.granularity, closed.period_start
            USING ERRCODE = 'BOC01', TABLE = TG_TABLE_NAME, SCHEMA = TG_TABLE_SCHEMA;
    END IF;
    RETURN NEW;
END $$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['app.payments', 'app.client_invoices', 'app.supplier_invoices', 'app.write_offs'] LOOP
        IF to_regclass(t) IS NOT NULL THEN
            EXECUTE format('CREATE TRIGGER closed_period BEFORE INSERT ON %s
                            FOR EACH ROW EXECUTE FUNCTION app.refuse_closed_posting()', t);
        END IF;
    END LOOP;
END $$;

SELECT app.grant_app_privileges();
"""

DOWNGRADE = r"""
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['app.payments', 'app.client_invoices', 'app.supplier_invoices', 'app.write_offs'] LOOP
        IF to_regclass(t) IS NOT NULL THEN
            EXECUTE format('DROP TRIGGER IF EXISTS closed_period ON %s', t);
        END IF;
    END LOOP;
END $$;
DROP FUNCTION app.refuse_closed_posting();
DELETE FROM app.role_permissions WHERE permission = 'close_period';
DELETE FROM app.permissions WHERE permission = 'close_period';
DROP TABLE app.closed_periods;

DROP TRIGGER chain ON audit.events;
DROP TRIGGER chain ON app.client_invoices;
DROP TRIGGER immutable ON audit.events;
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON audit.events
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
DROP TRIGGER immutable ON app.client_invoices;
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.client_invoices
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
DROP FUNCTION audit.seal_new_row();
DROP FUNCTION audit.seal_client_invoice(text);
DROP FUNCTION audit.seal_event(bigint);
DROP FUNCTION audit.next_link(text, text);
DROP FUNCTION app.refuse_change_unless_sealing();
DROP FUNCTION app.client_invoice_canonical(app.client_invoices);
DROP FUNCTION audit.event_canonical(audit.events);
ALTER TABLE app.client_invoices DROP COLUMN chain_seq, DROP COLUMN prev_hash, DROP COLUMN hash;
ALTER TABLE audit.events DROP COLUMN chain_seq, DROP COLUMN prev_hash, DROP COLUMN hash;
DROP TABLE audit.chain_heads;

ALTER DEFAULT PRIVILEGES IN SCHEMA raw, app REVOKE ALL ON TABLES FROM backoffice_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA audit REVOKE ALL ON TABLES FROM backoffice_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA raw, app, audit REVOKE ALL ON SEQUENCES FROM backoffice_app;
ALTER DEFAULT PRIVILEGES REVOKE ALL ON SCHEMAS FROM backoffice_app;
ALTER DEFAULT PRIVILEGES REVOKE ALL ON TABLES FROM backoffice_app;
DROP FUNCTION app.grant_app_privileges();
-- The role is the server's, shared by its databases: revoke here, never drop it.
DO $$
DECLARE
    s text;
BEGIN
    FOR s IN SELECT nspname FROM pg_namespace WHERE nspname IN
             ('raw', 'app', 'audit', 'staging', 'intermediate', 'marts', 'reference') LOOP
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM backoffice_app', s);
        EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM backoffice_app', s);
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM backoffice_app', s);
    END LOOP;
END $$;
ALTER DEFAULT PRIVILEGES IN SCHEMA staging, intermediate, marts REVOKE ALL ON TABLES FROM backoffice_app;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
