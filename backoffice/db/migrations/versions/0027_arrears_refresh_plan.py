"""Arrears refresh read dossier by dossier: its cost no longer grows with what the transaction loaded.

`app.refresh_arrears` (0023, locks from 0024) recomputed a statement's dossiers with one query
whose joins the planner chose: `ps.dossier_number IN (SELECT dossier_number FROM numbers)` over
app.payment_schedule, the app.dossier_payments view under the same semi-join, then joins to the
dossiers. The planner sizes the tables from their statistics. A booking day is loaded in one
transaction; if autovacuum (or anyone) runs ANALYZE on app.payment_schedule during that load, it
does not count the load's rows (not committed yet) and records the table as empty while it
already holds pages (reltuples 0, relpages > 0): every later estimate of the table is one row.
With `numbers` estimated at 10 rows, the planner then took the whole table as the outer side of a
nested-loop semi-join against the batch's numbers: every schedule row loaded so far compared with
each of the batch's numbers (17.5 million comparisons for a 500-dossier batch after 35,000 rows),
a cost per batch proportional to the day loaded so far, quadratic over the day (docs/ingest.md).

The recomputation is now written so that no plan depends on those estimates: for each number of
the statement (a LATERAL subquery, re-run per number), its schedule lines through the primary key
(`dossier_number = n`, in a subquery fenced by OFFSET 0 so that payment_schedule_due, which gives
the lines in due-date order, is no candidate), its payments through `payments_dossier` and
`payment_attributions_dossier`, the attribution test as a scalar subquery (a primary-key lookup
per payment), the departure date through `dossiers_number_prefix` (see the comment in the query:
the other indexes of app.dossiers end in dossier_number and, under such statistics, an index-only
walk or a skip scan of one of them is priced as one lookup). A sequential scan stays a candidate
everywhere, but it is priced at the table's real number of pages, so it is only taken for a table
of a few pages. The arrears computed are the same, row for row (same steps, same comparison with
what was paid, no row for a dossier never in arrears); tests/integration/test_arrears_refresh.py
checks the result against the 0023 query, and the buffers a refresh reads under "empty" statistics.

The locks are 0024's, unchanged. Downgrade restores 0024's function.

Revision ID: 0027
Revises: 0026
"""

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

MONEY_MOVING = "('captured', 'refunded', 'chargeback')"

# Per dossier number n: the steps of the amount due (0 before its first due date, then the running
# sum per due date), each from its date to the next one; the steps whose amount due exceeds what
# was paid (a payment counts under its attributed dossier if it has one, else under the one it
# names: app.dossier_payments, read here through the base tables), merged. No row when there is
# no such step (range_agg of no row is null). `numbers` is the function's argument.
ARREARS_PER_NUMBER = f"""
    SELECT n.dossier_number, r.arrears,
           -- Other indexes hold dossier_number further right, and with the table taken for one row a
           -- walk of one of them (index-only, or a skip scan) is priced as one lookup. Byte-wise
           -- equality (~>=~ and ~<=~, the same as = on text) is an operator of dossiers_number_prefix
           -- (text_pattern_ops) only, and return_date (true by a check) is in no index: that index,
           -- or a sequential scan priced at the table's real size, are the only candidates.
           (SELECT d.departure_date FROM app.dossiers d
            WHERE d.dossier_number ~>=~ n.dossier_number AND d.dossier_number ~<=~ n.dossier_number
              AND d.return_date >= d.departure_date)
    FROM (SELECT DISTINCT unnest(numbers) AS dossier_number) AS n
    CROSS JOIN LATERAL (
        SELECT range_agg(daterange(o.since, o.until, '[)')) AS arrears
        FROM (
            SELECT s.due_date AS since,
                   lead(s.due_date) OVER w AS until,
                   sum(s.amount) OVER w AS owed
            FROM (
                SELECT NULL::date AS due_date, 0::numeric AS amount
                UNION ALL
                SELECT ps.due_date, sum(ps.amount)
                -- OFFSET 0: the lines are read on their own, in no order, so an index giving them in
                -- due-date order (payment_schedule_due, a whole-table scan) is no candidate
                FROM (SELECT ps.due_date, ps.amount FROM app.payment_schedule ps
                      WHERE ps.dossier_number = n.dossier_number OFFSET 0) AS ps
                GROUP BY ps.due_date) AS s
            WINDOW w AS (ORDER BY s.due_date NULLS FIRST)) AS o
        WHERE o.owed > (
            SELECT coalesce(sum(x.amount), 0)
            FROM (
                SELECT p.amount
                FROM app.payments p
                WHERE p.dossier_number = n.dossier_number
                  AND p.status IN {MONEY_MOVING}
                  -- a scalar subquery (one attribution per payment), not NOT EXISTS: it stays a
                  -- primary-key lookup per payment instead of an anti-join the planner chooses
                  AND (SELECT a.payment_id FROM app.payment_attributions a WHERE a.payment_id = p.payment_id) IS NULL
                UNION ALL
                SELECT (SELECT p.amount FROM app.payments p
                        WHERE p.payment_id = a.payment_id AND p.status IN {MONEY_MOVING})
                FROM app.payment_attributions a
                WHERE a.dossier_number = n.dossier_number) AS x)
    ) AS r
    WHERE r.arrears IS NOT NULL"""


def _previous(filename: str) -> ModuleType:
    """An earlier migration's module (a migration file is not importable by name)."""
    spec = importlib.util.spec_from_file_location("_arrears_" + filename[:4], Path(__file__).with_name(filename))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _refresh(row_locks: str) -> str:
    return (
        r"""
CREATE OR REPLACE FUNCTION app.refresh_arrears(numbers text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF numbers IS NULL OR cardinality(numbers) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(numbers) > 100 THEN
        LOCK TABLE app.dossier_arrears IN SHARE ROW EXCLUSIVE MODE;
    ELSE"""
        + row_locks
        + r"""
        PERFORM pg_advisory_xact_lock(hashtext('app.dossier_arrears'), hashtext(n))
        FROM unnest(numbers) AS n ORDER BY n;
    END IF;
    DELETE FROM app.dossier_arrears WHERE dossier_number = ANY(numbers);
    INSERT INTO app.dossier_arrears (dossier_number, arrears, departure_date)"""
        + ARREARS_PER_NUMBER
        + r""";
END $$;
"""
    )


def upgrade() -> None:
    op.execute(_refresh(_previous("0024_arrears_lock_order.py").ROW_LOCKS))


def downgrade() -> None:
    previous = _previous("0024_arrears_lock_order.py")
    op.execute(previous._refresh(previous.ROW_LOCKS))
