"""Search at one million dossiers: indexes that list the matches in the Liste's order.

The Liste sorts by departure date, then dossier number. Each index the search filters through
now continues with those two columns, so the first page is read in its order and the read
stops at the page instead of sorting every match (docs/scaling.md, "Search plans"):

- departure windows: `(departure_date, dossier_number)`, the columns the windows filter on
  (status, brand, amount, destination) included, replaces `(departure_date, status, brand)`,
  whose order within a day was by status and brand (the page then sorted the whole window);
- client names: `(client_name_search, departure_date, dossier_number)` replaces
  `(client_name_search) INCLUDE (departure_date, ...)`: the search takes the first rows of each
  matching name and merges them (a common name with a typo is 20,000 dossiers at a million);
- destinations: `(destination, departure_date, dossier_number)` replaces `(destination)`, the
  same for destination terms;
- arrears: `app.dossier_arrears (departure_date, dossier_number)` replaces `(departure_date)`:
  the unpaid-balance shortcut walks the few dossiers in arrears departing in its window in the
  page's order and reads their dossier row, rather than every dossier departing then.

As many indexes as before on app.dossiers (writes cost the same), each about the same size.

Revision ID: 0026
Revises: 0024
"""

from alembic import op

revision = "0026"
down_revision = "0024"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE INDEX dossiers_by_departure ON app.dossiers (departure_date, dossier_number)
    INCLUDE (status, brand, sale_total, destination);
DROP INDEX app.dossiers_departure_status_brand;
CREATE INDEX dossiers_client_name_departure ON app.dossiers (client_name_search, departure_date, dossier_number)
    INCLUDE (status);
DROP INDEX app.dossiers_client_name_search;
CREATE INDEX dossiers_destination_departure ON app.dossiers (destination, departure_date, dossier_number);
DROP INDEX app.dossiers_destination;
CREATE INDEX dossier_arrears_by_departure ON app.dossier_arrears (departure_date, dossier_number) INCLUDE (arrears);
DROP INDEX app.dossier_arrears_departure;
"""

DOWNGRADE = r"""
CREATE INDEX dossier_arrears_departure ON app.dossier_arrears (departure_date) INCLUDE (dossier_number, arrears);
DROP INDEX app.dossier_arrears_by_departure;
CREATE INDEX dossiers_destination ON app.dossiers (destination);
DROP INDEX app.dossiers_destination_departure;
CREATE INDEX dossiers_client_name_search ON app.dossiers (client_name_search)
    INCLUDE (departure_date, status, dossier_number);
DROP INDEX app.dossiers_client_name_departure;
CREATE INDEX dossiers_departure_status_brand ON app.dossiers (departure_date, status, brand)
    INCLUDE (dossier_number, sale_total, destination);
DROP INDEX app.dossiers_by_departure;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
