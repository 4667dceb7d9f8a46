"""Search at one million dossiers: the days each dossier is in arrears, kept by triggers.

The Liste's "balance unpaid" filter (and the shortcut "departures in the next 14 days with an
unpaid balance") compared, per candidate dossier, the schedule fallen due by today with the
money-moving payments: two correlated aggregates per candidate, one of them over the
app.dossier_payments view (payments under their attributed dossier), 2.3 s at a million.

app.dossier_arrears holds, for each dossier that is in arrears on some day, the days on which the
schedule fallen due exceeds what was paid, as a `datemultirange`: exact whatever the schedule
(negative lines, several lines a day, a refund beyond what was due). The filter becomes one probe
`arrears @> today`. A dossier that is never in arrears (fully paid, or nothing due) has no row.
The row carries a copy of the dossier's departure date (kept by triggers on app.dossiers), so a
search bounded by departure starts from the few dossiers in arrears departing then.

The rows are recomputed set-based, for the dossiers a statement touched, by statement-level
triggers with transition tables on app.payment_schedule, app.payments and
app.payment_attributions: one DELETE and one INSERT per statement, whatever the number of rows (a
COPY or a day's merge included). Two transactions refreshing the same dossier are serialised by
an advisory lock per dossier (a table lock beyond 100 dossiers), taken before the recomputation
reads, so the last one to commit computed from what the first committed (READ COMMITTED).

Revision ID: 0023
Revises: 0022
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# Per dossier: the steps of the amount due (0 before its first due date, then the running sum per
# due date), each step from its date to the next one; the steps whose amount due exceeds what was
# paid, merged. `{numbers}` is the set of dossiers recomputed.
ARREARS = """
    WITH numbers AS ({numbers}),
    due AS (
        SELECT ps.dossier_number, ps.due_date, sum(ps.amount) AS amount
        FROM app.payment_schedule ps
        WHERE ps.dossier_number IN (SELECT dossier_number FROM numbers)
        GROUP BY ps.dossier_number, ps.due_date),
    steps AS (
        SELECT dossier_number, NULL::date AS due_date, 0::numeric AS amount FROM numbers
        UNION ALL
        SELECT dossier_number, due_date, amount FROM due),
    owed AS (
        SELECT dossier_number, due_date AS since,
               lead(due_date) OVER w AS until,
               sum(amount) OVER w AS owed
        FROM steps
        WINDOW w AS (PARTITION BY dossier_number ORDER BY due_date NULLS FIRST)),
    paid AS (
        SELECT p.dossier_number, sum(p.amount) AS paid
        FROM app.dossier_payments p
        WHERE p.dossier_number IN (SELECT dossier_number FROM numbers)
          AND p.status IN ('captured', 'refunded', 'chargeback')
        GROUP BY p.dossier_number)
    SELECT o.dossier_number, range_agg(daterange(o.since, o.until, '[)')) AS arrears, d.departure_date
    FROM owed o
    LEFT JOIN paid ON paid.dossier_number = o.dossier_number
    LEFT JOIN app.dossiers d ON d.dossier_number = o.dossier_number
    WHERE o.owed > coalesce(paid.paid, 0)
    GROUP BY o.dossier_number, d.departure_date"""

UPGRADE = (
    r"""
CREATE TABLE app.dossier_arrears (
    -- no foreign key: a payment may name a dossier we do not have yet; the search joins the dossiers
    dossier_number text           PRIMARY KEY,
    arrears        datemultirange NOT NULL CHECK (NOT isempty(arrears)),
    -- the dossier's, copied (null while the dossier is unknown) and kept by the dossiers' triggers
    -- below: a search bounded by departure starts from the few dossiers in arrears departing then
    departure_date date
);
CREATE INDEX dossier_arrears_departure ON app.dossier_arrears (departure_date) INCLUDE (dossier_number, arrears);

CREATE FUNCTION app.refresh_arrears(numbers text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF numbers IS NULL OR cardinality(numbers) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(numbers) > 100 THEN
        LOCK TABLE app.dossier_arrears IN SHARE ROW EXCLUSIVE MODE;
    ELSE
        PERFORM pg_advisory_xact_lock(hashtext('app.dossier_arrears'), hashtext(n))
        FROM unnest(numbers) AS n ORDER BY n;
    END IF;
    DELETE FROM app.dossier_arrears WHERE dossier_number = ANY(numbers);
    INSERT INTO app.dossier_arrears (dossier_number, arrears, departure_date)
"""
    + ARREARS.format(numbers="SELECT DISTINCT unnest(numbers) AS dossier_number")
    + r""";
END $$;

CREATE FUNCTION app.arrears_on_schedule() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    numbers text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT dossier_number) INTO numbers FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT dossier_number) INTO numbers FROM old_rows;
    ELSE
        SELECT array_agg(DISTINCT n) INTO numbers
        FROM (SELECT dossier_number FROM new_rows UNION SELECT dossier_number FROM old_rows) AS t (n);
    END IF;
    PERFORM app.refresh_arrears(numbers);
    RETURN NULL;
END $$;

-- A payment counts under its attributed dossier if an agent chose one, else the one it names.
CREATE FUNCTION app.arrears_on_payment() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    numbers text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT n) INTO numbers FROM (
            SELECT dossier_number FROM new_rows
            UNION SELECT a.dossier_number FROM app.payment_attributions a JOIN new_rows r USING (payment_id)) AS t (n)
        WHERE n IS NOT NULL;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT n) INTO numbers FROM (
            SELECT dossier_number FROM old_rows
            UNION SELECT a.dossier_number FROM app.payment_attributions a JOIN old_rows r USING (payment_id)) AS t (n)
        WHERE n IS NOT NULL;
    ELSE
        SELECT array_agg(DISTINCT n) INTO numbers FROM (
            SELECT dossier_number FROM new_rows
            UNION SELECT dossier_number FROM old_rows
            UNION SELECT a.dossier_number FROM app.payment_attributions a JOIN new_rows r USING (payment_id)) AS t (n)
        WHERE n IS NOT NULL;
    END IF;
    PERFORM app.refresh_arrears(numbers);
    RETURN NULL;
END $$;

-- An attribution moves a payment from the dossier it named to the attributed one.
CREATE FUNCTION app.arrears_on_attribution() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    numbers text[];
BEGIN
    SELECT array_agg(DISTINCT n) INTO numbers FROM (
        SELECT dossier_number FROM new_rows
        UNION SELECT p.dossier_number FROM app.payments p JOIN new_rows r USING (payment_id)) AS t (n)
    WHERE n IS NOT NULL;
    PERFORM app.refresh_arrears(numbers);
    RETURN NULL;
END $$;

-- A dossier's departure, copied to its arrears row: when it is written (it may come after a
-- payment naming it) and when it changes.
CREATE FUNCTION app.arrears_departure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE app.dossier_arrears a SET departure_date = n.departure_date
    FROM new_rows n
    WHERE a.dossier_number = n.dossier_number AND a.departure_date IS DISTINCT FROM n.departure_date;
    RETURN NULL;
END $$;
CREATE TRIGGER arrears_departure_on_insert AFTER INSERT ON app.dossiers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION app.arrears_departure();
CREATE TRIGGER arrears_departure_on_update AFTER UPDATE ON app.dossiers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION app.arrears_departure();

CREATE TRIGGER arrears_on_insert AFTER INSERT ON app.payment_schedule
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION app.arrears_on_schedule();
CREATE TRIGGER arrears_on_update AFTER UPDATE ON app.payment_schedule
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app.arrears_on_schedule();
CREATE TRIGGER arrears_on_delete AFTER DELETE ON app.payment_schedule
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION app.arrears_on_schedule();
CREATE TRIGGER arrears_on_insert AFTER INSERT ON app.payments
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION app.arrears_on_payment();
CREATE TRIGGER arrears_on_update AFTER UPDATE ON app.payments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app.arrears_on_payment();
CREATE TRIGGER arrears_on_delete AFTER DELETE ON app.payments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION app.arrears_on_payment();
CREATE TRIGGER arrears_on_insert AFTER INSERT ON app.payment_attributions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION app.arrears_on_attribution();

INSERT INTO app.dossier_arrears (dossier_number, arrears, departure_date)
"""
    + ARREARS.format(
        numbers="SELECT dossier_number FROM app.payment_schedule UNION SELECT dossier_number FROM app.dossier_payments "
        "WHERE dossier_number IS NOT NULL"
    )
    + r""";

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'backoffice_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON app.dossier_arrears TO backoffice_app;
    END IF;
END $$;
"""
)

DOWNGRADE = r"""
DROP TRIGGER arrears_on_insert ON app.payment_attributions;
DROP TRIGGER arrears_on_delete ON app.payments;
DROP TRIGGER arrears_on_update ON app.payments;
DROP TRIGGER arrears_on_insert ON app.payments;
DROP TRIGGER arrears_on_delete ON app.payment_schedule;
DROP TRIGGER arrears_on_update ON app.payment_schedule;
DROP TRIGGER arrears_on_insert ON app.payment_schedule;
DROP TRIGGER arrears_departure_on_update ON app.dossiers;
DROP TRIGGER arrears_departure_on_insert ON app.dossiers;
DROP FUNCTION app.arrears_departure();
DROP FUNCTION app.arrears_on_attribution();
DROP FUNCTION app.arrears_on_payment();
DROP FUNCTION app.arrears_on_schedule();
DROP FUNCTION app.refresh_arrears(text[]);
DROP TABLE app.dossier_arrears;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
