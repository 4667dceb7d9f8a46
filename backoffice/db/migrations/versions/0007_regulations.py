"""Supplier regulations: a price change a supplier asks for, applied to one dossier or to thousands.

A regulation is a record of what was asked (supplier, service kinds, amount or percentage for the
purchase and the sale, currency, reason) and by whom; the price lines it adds point back at it
(`source_type` 'regulation', `source_id` its id). `app.regulation_dossiers` keeps, per dossier,
the version and sale total before and after. An undo is another regulation naming the one it
reverses (at most once); like price lines, neither table is ever updated nor deleted.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE app.regulations (
    id                     bigserial     PRIMARY KEY,
    scope                  text          NOT NULL CHECK (scope IN ('single', 'mass')),
    supplier_code          text          NOT NULL CHECK (supplier_code <> ''),
    service_kinds          text[]        NOT NULL CHECK (cardinality(service_kinds) >= 1),
    mode                   text          NOT NULL CHECK (mode IN ('amount', 'percent')),
    -- amount mode: per service, in `currency`; percent mode: percent of the service's active lines
    purchase_value         numeric(14,2) NOT NULL,
    sale_value             numeric(14,2) NOT NULL,
    currency               char(3),
    reason                 text          NOT NULL CHECK (reason <> ''),
    reverses_regulation_id bigint        UNIQUE REFERENCES app.regulations,
    dossier_count          integer       NOT NULL CHECK (dossier_count >= 0),
    line_count             integer       NOT NULL CHECK (line_count >= 0),
    created_by             text          NOT NULL,
    created_at             timestamptz   NOT NULL DEFAULT now(),
    CHECK ((mode = 'amount') = (currency IS NOT NULL))
);

CREATE TABLE app.regulation_dossiers (
    regulation_id     bigint        NOT NULL REFERENCES app.regulations,
    dossier_number    text          NOT NULL REFERENCES app.dossiers,
    version_before    integer       NOT NULL,
    version_after     integer       NOT NULL,
    sale_total_before numeric(14,2) NOT NULL,
    sale_total_after  numeric(14,2) NOT NULL,
    PRIMARY KEY (regulation_id, dossier_number)
);
CREATE INDEX regulation_dossiers_dossier ON app.regulation_dossiers (dossier_number);

-- The lines a regulation added, found again by its undo.
CREATE INDEX price_lines_regulation ON app.price_lines (source_id) WHERE source_type = 'regulation';

CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.regulations
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
CREATE TRIGGER immutable BEFORE UPDATE OR DELETE ON app.regulation_dossiers
    FOR EACH ROW EXECUTE FUNCTION app.refuse_change();
"""

DOWNGRADE = """
DROP INDEX app.price_lines_regulation;
DROP TABLE app.regulation_dossiers;
DROP TABLE app.regulations;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
