"""Arrears triggers take a dossier's row lock before its arrears: one lock order, no deadlock.

Migration 0023's `app.refresh_arrears` took a per-dossier advisory lock, then rewrote the
dossier's app.dossier_arrears row, as soon as a payment (or schedule line, or attribution) was
written. The services lock the dossier's row too, but not all at the same moment:
`request_refund` (and write-offs, invoices...) lock it first (`SELECT ... FOR UPDATE`) and insert
their payment after, while `record_payment`, `assign_payment` and the automatic balance charge
insert first and lock the row when they bump the version, after. Two such actions on one dossier
took the same two locks in opposite orders; the server log of a reproduction
(tests/integration/test_lock_order.py):

    Process A waits for ShareLock on transaction X; blocked by process B.      (the payment's version bump)
    Process B waits for ExclusiveLock on advisory lock [...]; blocked by process A.  (the refund's payment-out)

The order is now the same for every path: **the dossier's row, then its arrears**. The
refresh first locks the rows of the dossiers it recomputes (`FOR NO KEY UPDATE`, the lock an
`UPDATE` of the version takes; a no-op for a service that holds it already), in dossier number
order, then takes the advisory locks (still needed for a payment naming a dossier we do not
have: no row to lock) and rewrites. A payment meeting a refund now waits before holding
anything, and is then told the dossier changed (StaleVersion), as any late write is.

Beyond 100 dossiers (a day's merge) the refresh still takes a table lock on app.dossier_arrears
instead (a lock per dossier would fill the lock table). For that lock not to wait on every agent's
version bump, the departure trigger on app.dossiers now writes app.dossier_arrears only when a
departure date really differs: an `UPDATE` statement, even one changing no row, takes ROW EXCLUSIVE
on its table until commit, so under 0023 each version bump held a lock the bulk refresh waits for,
and a mass regulation that had bumped one dossier and waited on a second one, locked by the
booking merge waiting for that table lock, closed a cycle.

Revision ID: 0024
Revises: 0023
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def _arrears_query() -> str:
    """0023's recomputation, the one definition (a migration file is not importable by name)."""
    spec = importlib.util.spec_from_file_location("_arrears_0023", Path(__file__).with_name("0023_search_arrears.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.ARREARS.format(numbers="SELECT DISTINCT unnest(numbers) AS dossier_number")


ROW_LOCKS = """
        -- The dossiers' rows first, in number order: the lock every action on a dossier takes.
        PERFORM 1 FROM app.dossiers WHERE dossier_number = ANY(numbers)
        ORDER BY dossier_number FOR NO KEY UPDATE;"""


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
    INSERT INTO app.dossier_arrears (dossier_number, arrears, departure_date)
"""
        + _arrears_query()
        + r""";
END $$;
"""
    )


DEPARTURE = r"""
CREATE OR REPLACE FUNCTION app.arrears_departure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Looked up first: an UPDATE, even of no row, would hold ROW EXCLUSIVE on app.dossier_arrears
    -- until commit after every version bump, which a bulk refresh's table lock has to wait for.
    IF EXISTS (SELECT 1 FROM new_rows n JOIN app.dossier_arrears a USING (dossier_number)
               WHERE a.departure_date IS DISTINCT FROM n.departure_date) THEN
        UPDATE app.dossier_arrears a SET departure_date = n.departure_date
        FROM new_rows n
        WHERE a.dossier_number = n.dossier_number AND a.departure_date IS DISTINCT FROM n.departure_date;
    END IF;
    RETURN NULL;
END $$;
"""

DEPARTURE_0023 = r"""
CREATE OR REPLACE FUNCTION app.arrears_departure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE app.dossier_arrears a SET departure_date = n.departure_date
    FROM new_rows n
    WHERE a.dossier_number = n.dossier_number AND a.departure_date IS DISTINCT FROM n.departure_date;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(_refresh(ROW_LOCKS) + DEPARTURE)


def downgrade() -> None:
    op.execute(_refresh("") + DEPARTURE_0023)
