"""Search at one million dossiers: a small table of search terms instead of trigram indexes on the dossiers.

The Liste matches a client name typo-tolerantly (`%`, `<%`, LIKE), an e-mail and a destination
by fragment. Over a million dossiers a trigram index on each of those columns is both slow to
search (`%` over many near-duplicate names rechecks tens of thousands of rows) and expensive to
write: every new dossier, and every update of one that is not HOT, inserted into five GIN
indexes. Names, e-mails and destinations repeat a lot, so their distinct normalised values go to
app.search_terms (a few thousand names and destinations, one row per e-mail address), which
carries the trigram indexes; the search matches terms there first, then joins the dossiers by a
plain btree on the same value.

The terms are collected set-based by statement-level triggers with transition tables: one
INSERT .. ON CONFLICT DO NOTHING per statement, whatever the number of rows (a COPY or a merge
of a whole day included). A term is never removed: one whose dossiers are gone or renamed joins
to nothing, so results are exact; `app.prune_search_terms()` drops them when wanted.

Indexes dropped: the four GIN trigram indexes on app.dossiers and the one on app.travellers (no
query reads traveller names by similarity). Added: btrees for the joins, the dossier number
prefix (`text_pattern_ops`, whatever the database collation) and the built-in shortcuts; the
name, departure and booking-date indexes now cover the columns the search filters and sorts on,
so that it counts thousands of matches from the index alone.

Revision ID: 0020
Revises: 0019
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE app.search_terms (
    kind text NOT NULL CHECK (kind IN ('name', 'email', 'destination')),
    term text NOT NULL,
    -- term first: a search reaches its kind's terms through the trigram index, never by a scan
    -- of the kind's key range that would test every term with the costly similarity operators.
    PRIMARY KEY (term, kind)
);
-- One partial index per kind: a name search never wades through e-mails that contain the name.
CREATE INDEX search_terms_name_trgm ON app.search_terms USING gin (term gin_trgm_ops) WHERE kind = 'name';
CREATE INDEX search_terms_email_trgm ON app.search_terms USING gin (term gin_trgm_ops) WHERE kind = 'email';
-- Destinations are kept as written (a dossier is then matched on its plain column, without
-- normalising a million values) and searched normalised.
CREATE INDEX search_terms_destination_trgm ON app.search_terms USING gin (app.normalise_text(term) gin_trgm_ops)
    WHERE kind = 'destination';

-- The terms of the dossiers a statement wrote: the same expressions the search compares.
-- Sorted, so two transactions adding overlapping terms take their locks in the same order.
CREATE FUNCTION app.collect_search_terms() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO app.search_terms (kind, term)
    SELECT DISTINCT t.kind, t.term
    FROM written d
    CROSS JOIN LATERAL (VALUES ('name', d.client_name_search),
                               ('email', lower(d.client_email)),
                               ('destination', d.destination)) AS t (kind, term)
    WHERE t.term IS NOT NULL
    ORDER BY t.kind, t.term
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER search_terms_on_insert AFTER INSERT ON app.dossiers
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION app.collect_search_terms();
CREATE TRIGGER search_terms_on_update AFTER UPDATE ON app.dossiers
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION app.collect_search_terms();

CREATE FUNCTION app.prune_search_terms() RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM app.search_terms t
        WHERE NOT EXISTS (
            SELECT 1 FROM app.dossiers d
            WHERE (t.kind = 'name' AND d.client_name_search = t.term)
               OR (t.kind = 'email' AND lower(d.client_email) = t.term)
               OR (t.kind = 'destination' AND d.destination = t.term))
        RETURNING 1)
    SELECT count(*) FROM gone
$$;

INSERT INTO app.search_terms (kind, term)
SELECT DISTINCT t.kind, t.term
FROM app.dossiers d
CROSS JOIN LATERAL (VALUES ('name', d.client_name_search),
                           ('email', lower(d.client_email)),
                           ('destination', d.destination)) AS t (kind, term)
WHERE t.term IS NOT NULL;

DROP INDEX app.dossiers_name_trgm;
DROP INDEX app.dossiers_email_trgm;
DROP INDEX app.dossiers_destination_trgm;
DROP INDEX app.dossiers_number_trgm;
DROP INDEX app.travellers_name_trgm;

-- Covering: the search counts its matches and picks the page's numbers from the index alone
-- (index-only scans), then reads the rows of that one page.
CREATE INDEX dossiers_client_name_search ON app.dossiers (client_name_search)
    INCLUDE (departure_date, status, dossier_number);
DROP INDEX app.dossiers_departure_status_brand;
CREATE INDEX dossiers_departure_status_brand ON app.dossiers (departure_date, status, brand)
    INCLUDE (dossier_number, sale_total, destination);
DROP INDEX app.dossiers_created_at;
CREATE INDEX dossiers_created_at ON app.dossiers (created_at) INCLUDE (departure_date, dossier_number);
CREATE INDEX dossiers_destination ON app.dossiers (destination);
CREATE INDEX dossiers_number_prefix ON app.dossiers (dossier_number text_pattern_ops);
-- The shortcuts: live options by departure, cancellations by when they happened.
CREATE INDEX dossiers_options ON app.dossiers (departure_date, dossier_number) WHERE status = 'option';
CREATE INDEX dossiers_cancellations ON app.dossiers (updated_at) INCLUDE (dossier_number) WHERE status = 'cancelled';
"""

DOWNGRADE = r"""
DROP INDEX app.dossiers_cancellations;
DROP INDEX app.dossiers_options;
DROP INDEX app.dossiers_number_prefix;
DROP INDEX app.dossiers_destination;
DROP INDEX app.dossiers_client_name_search;
DROP INDEX app.dossiers_created_at;
CREATE INDEX dossiers_created_at ON app.dossiers (created_at);
DROP INDEX app.dossiers_departure_status_brand;
CREATE INDEX dossiers_departure_status_brand ON app.dossiers (departure_date, status, brand);
CREATE INDEX dossiers_name_trgm ON app.dossiers USING gin (client_name_search gin_trgm_ops);
CREATE INDEX dossiers_email_trgm ON app.dossiers USING gin (lower(client_email) gin_trgm_ops);
CREATE INDEX dossiers_destination_trgm ON app.dossiers USING gin (app.normalise_text(destination) gin_trgm_ops);
CREATE INDEX dossiers_number_trgm ON app.dossiers USING gin (dossier_number gin_trgm_ops);
CREATE INDEX travellers_name_trgm ON app.travellers USING gin (app.normalise_text(last_name) gin_trgm_ops);
DROP TRIGGER search_terms_on_update ON app.dossiers;
DROP TRIGGER search_terms_on_insert ON app.dossiers;
DROP FUNCTION app.prune_search_terms();
DROP FUNCTION app.collect_search_terms();
DROP TABLE app.search_terms;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
