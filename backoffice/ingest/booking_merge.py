"""The tables a day of booking snapshots writes, and the set-based SQL of its update path.

bookings.py COPYs every row once, straight into its target table, for the snapshots it can
place without the database's help: a dossier the database does not know yet and that the day
delivers once (nearly all of a day). The others (a dossier already stored, or delivered more
than once in the day) are COPYed to typed stage tables with the same columns plus `snap`, the
snapshot's number in this load, and merged here: the latest of each dossier (highest version,
then updated_at) becomes its state. raw.booking_snapshots is always written by COPY, and the
client has already sorted every snapshot into new, stale (reported through `stage_stale`) or
unchanged (`stage_count` holds the per-file counts). A version re-sent with a later updated_at
replaces the state but keeps the price lines first delivered for that version (lines are
immutable; the platform bumps the version when it changes them).
"""

from __future__ import annotations

from backoffice.db.sale_total import active_sale_total

# Columns each target is COPYed with, in the order booking_rows formats them; parents first.
TARGETS = {
    "raw.booking_snapshots": ("dossier_number", "version", "updated_at", "payload", "file", "line"),
    "app.dossiers": (
        "dossier_number", "platform_version", "status", "channel", "brand", "agency_code", "currency",
        "departure_date", "return_date", "destination", "destination_country", "client_id", "client_title",
        "client_first_name", "client_last_name", "client_email", "client_phone", "client_language",
        "client_address", "created_at", "updated_at", "sale_total",
    ),
    "app.travellers": ("dossier_number", "traveller_id", "first_name", "last_name", "birth_date", "kind"),
    "app.services": (
        "dossier_number", "service_id", "kind", "supplier_code", "supplier_reference", "label", "start_date",
        "end_date", "status",
    ),
    "app.payment_schedule": ("dossier_number", "seq", "due_date", "amount", "kind", "method"),
    "app.price_lines": (
        "dossier_number", "service_id", "line_id", "origin", "booking_version", "label", "quantity",
        "unit_sale_amount", "sale_currency", "unit_purchase_amount", "purchase_currency", "vat_rate",
        "supplier_code", "source_type", "source_id", "created_at", "created_by",
    ),
}  # fmt: skip
# The stage table of each app.* target, for the snapshots merged by SQL.
STAGES = {
    "app.dossiers": "stage_dossier",
    "app.travellers": "stage_traveller",
    "app.services": "stage_service",
    "app.payment_schedule": "stage_schedule",
    "app.price_lines": "stage_line",
}

CREATE_STAGE = """
CREATE TEMP TABLE stage_dossier (
    snap integer NOT NULL, dossier_number text NOT NULL, platform_version integer NOT NULL, status text,
    channel text, brand text, agency_code text, currency text, departure_date date, return_date date,
    destination text, destination_country text, client_id text, client_title text, client_first_name text,
    client_last_name text, client_email text, client_phone text, client_language text, client_address jsonb,
    created_at timestamptz, updated_at timestamptz NOT NULL, sale_total numeric(14,2)
) ON COMMIT DROP;
CREATE TEMP TABLE stage_traveller (
    snap integer NOT NULL, dossier_number text, traveller_id text, first_name text, last_name text,
    birth_date date, kind text
) ON COMMIT DROP;
CREATE TEMP TABLE stage_service (
    snap integer NOT NULL, dossier_number text, service_id text, kind text, supplier_code text,
    supplier_reference text, label text, start_date date, end_date date, status text
) ON COMMIT DROP;
CREATE TEMP TABLE stage_schedule (
    snap integer NOT NULL, dossier_number text, seq integer, due_date date, amount numeric(14,2), kind text,
    method text
) ON COMMIT DROP;
CREATE TEMP TABLE stage_line (
    snap integer NOT NULL, dossier_number text, service_id text, line_id text, origin text, booking_version integer,
    label text, quantity integer, unit_sale_amount numeric(14,2), sale_currency text,
    unit_purchase_amount numeric(14,2), purchase_currency text, vat_rate numeric(6,4), supplier_code text,
    source_type text, source_id text, created_at timestamptz, created_by text
) ON COMMIT DROP;
CREATE TEMP TABLE stage_stale (
    file text NOT NULL, line integer NOT NULL, dossier_number text NOT NULL, version integer NOT NULL,
    updated_at timestamptz NOT NULL, applied_version integer NOT NULL, applied_updated_at timestamptz NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE stage_count (
    file text PRIMARY KEY, loaded integer NOT NULL, stale integer NOT NULL, unchanged integer NOT NULL
) ON COMMIT DROP;
"""

WINNERS = """
CREATE TEMP TABLE stage_winner ON COMMIT DROP AS
SELECT DISTINCT ON (dossier_number) snap, dossier_number, platform_version AS version, updated_at
FROM stage_dossier
ORDER BY dossier_number, platform_version DESC, updated_at DESC;
"""

REJECT_STALE = """
INSERT INTO stage_rejection (file, line, record_key, reason)
SELECT file, line, dossier_number,
       CASE WHEN version < applied_version
            THEN format('version %s is older than version %s already applied', version, applied_version)
            ELSE format('version %s updated at %s is older than the same version updated at %s already applied',
                        version, updated_at, applied_updated_at)
       END
FROM stage_stale;
"""

# The dossier's sale total, computed before the upsert so the row is written once: updating it
# afterwards rewrote every dossier row and all its indexes a second time. The Devis' definition
# (backoffice.db.sale_total) over the lines the dossier has once INSERT_PRICE_LINES has run: the
# version's booking lines (those stored for it already, which are immutable, plus the snapshot's
# lines not stored yet) and every line recorded here (adjustments, regulations...), with the
# snapshot's cancelled services. (A dossier COPYed directly has no line yet: booking_rows sums its
# snapshot's lines the same way.)
STAGE_TOTALS = f"""
CREATE TEMP TABLE stage_total ON COMMIT DROP AS
WITH lines AS (
    SELECT p.dossier_number, p.service_id, p.origin, p.sale_total
    FROM stage_winner w
    JOIN app.price_lines p
      ON p.dossier_number = w.dossier_number AND (p.origin <> 'booking' OR p.booking_version = w.version)
    UNION ALL
    SELECT w.dossier_number, l.service_id, 'booking', (l.quantity * l.unit_sale_amount)::numeric(14,2)
    FROM stage_winner w JOIN stage_line l USING (snap)
    WHERE NOT EXISTS (SELECT 1 FROM app.price_lines p
                      WHERE p.dossier_number = w.dossier_number AND p.origin = 'booking'
                        AND p.booking_version = w.version AND p.line_id = l.line_id)
), cancelled AS (
    SELECT w.dossier_number, s.service_id
    FROM stage_winner w JOIN stage_service s USING (snap)
    WHERE s.status = 'cancelled'
)
{active_sale_total("stage_winner", "lines", "cancelled")};
"""

# The platform owns a dossier's state: a newer snapshot replaces it, and bumps the row's
# `version` so an agent's form opened on the old state is refused as stale.
UPSERT_DOSSIERS = """
INSERT INTO app.dossiers (
    dossier_number, platform_version, status, channel, brand, agency_code, currency,
    departure_date, return_date, destination, destination_country, client_id, client_title,
    client_first_name, client_last_name, client_email, client_phone, client_language,
    client_address, created_at, updated_at, sale_total)
SELECT w.dossier_number, w.version, b.status, b.channel, b.brand, b.agency_code, b.currency,
       b.departure_date, b.return_date, b.destination, b.destination_country, b.client_id, b.client_title,
       b.client_first_name, b.client_last_name, b.client_email, b.client_phone, b.client_language,
       b.client_address, b.created_at, w.updated_at, t.sale_total
FROM stage_winner w
JOIN stage_dossier b USING (snap)
JOIN stage_total t ON t.dossier_number = w.dossier_number
ORDER BY w.dossier_number
ON CONFLICT (dossier_number) DO UPDATE SET
    platform_version = EXCLUDED.platform_version,
    version = app.dossiers.version + 1,
    status = EXCLUDED.status,
    channel = EXCLUDED.channel,
    brand = EXCLUDED.brand,
    agency_code = EXCLUDED.agency_code,
    currency = EXCLUDED.currency,
    departure_date = EXCLUDED.departure_date,
    return_date = EXCLUDED.return_date,
    destination = EXCLUDED.destination,
    destination_country = EXCLUDED.destination_country,
    client_id = EXCLUDED.client_id,
    client_title = EXCLUDED.client_title,
    client_first_name = EXCLUDED.client_first_name,
    client_last_name = EXCLUDED.client_last_name,
    client_email = EXCLUDED.client_email,
    client_phone = EXCLUDED.client_phone,
    client_language = EXCLUDED.client_language,
    client_address = EXCLUDED.client_address,
    created_at = EXCLUDED.created_at,
    updated_at = EXCLUDED.updated_at,
    sale_total = EXCLUDED.sale_total;
"""

# Children of a dossier that gets a new state: rows the new state no longer has are deleted
# first (so the upsert that follows does not probe them), then rows are upserted, and a row
# equal to what is stored is left alone (no dead tuple, no index entry) when a new version
# changes only part of the dossier.
MERGE_TRAVELLERS = """
DELETE FROM app.travellers x
USING stage_winner w
WHERE x.dossier_number = w.dossier_number
  AND NOT EXISTS (SELECT 1 FROM stage_traveller t WHERE t.snap = w.snap AND t.traveller_id = x.traveller_id);

INSERT INTO app.travellers AS x (dossier_number, traveller_id, first_name, last_name, birth_date, kind)
SELECT w.dossier_number, t.traveller_id, t.first_name, t.last_name, t.birth_date, t.kind
FROM stage_winner w JOIN stage_traveller t USING (snap)
ON CONFLICT (dossier_number, traveller_id) DO UPDATE SET
    first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
    birth_date = EXCLUDED.birth_date, kind = EXCLUDED.kind
WHERE (x.first_name, x.last_name, x.birth_date, x.kind)
    IS DISTINCT FROM (EXCLUDED.first_name, EXCLUDED.last_name, EXCLUDED.birth_date, EXCLUDED.kind);
"""

MERGE_SERVICES = """
DELETE FROM app.services x
USING stage_winner w
WHERE x.dossier_number = w.dossier_number
  AND NOT EXISTS (SELECT 1 FROM stage_service s WHERE s.snap = w.snap AND s.service_id = x.service_id);

INSERT INTO app.services AS x (dossier_number, service_id, kind, supplier_code, supplier_reference, label,
                               start_date, end_date, status)
SELECT w.dossier_number, s.service_id, s.kind, s.supplier_code, s.supplier_reference, s.label,
       s.start_date, s.end_date, s.status
FROM stage_winner w JOIN stage_service s USING (snap)
ON CONFLICT (dossier_number, service_id) DO UPDATE SET
    kind = EXCLUDED.kind, supplier_code = EXCLUDED.supplier_code,
    supplier_reference = EXCLUDED.supplier_reference, label = EXCLUDED.label,
    start_date = EXCLUDED.start_date, end_date = EXCLUDED.end_date, status = EXCLUDED.status
WHERE (x.kind, x.supplier_code, x.supplier_reference, x.label, x.start_date, x.end_date, x.status)
    IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.supplier_code, EXCLUDED.supplier_reference, EXCLUDED.label,
                      EXCLUDED.start_date, EXCLUDED.end_date, EXCLUDED.status);
"""

MERGE_SCHEDULE = """
DELETE FROM app.payment_schedule x
USING stage_winner w
WHERE x.dossier_number = w.dossier_number
  AND NOT EXISTS (SELECT 1 FROM stage_schedule s WHERE s.snap = w.snap AND s.seq = x.seq);

INSERT INTO app.payment_schedule AS x (dossier_number, seq, due_date, amount, kind, method)
SELECT w.dossier_number, s.seq, s.due_date, s.amount, s.kind, s.method
FROM stage_winner w JOIN stage_schedule s USING (snap)
ON CONFLICT (dossier_number, seq) DO UPDATE SET
    due_date = EXCLUDED.due_date, amount = EXCLUDED.amount, kind = EXCLUDED.kind, method = EXCLUDED.method
WHERE (x.due_date, x.amount, x.kind, x.method)
    IS DISTINCT FROM (EXCLUDED.due_date, EXCLUDED.amount, EXCLUDED.kind, EXCLUDED.method);
"""

# Price lines are immutable: a new version adds its own lines, older versions' lines stay.
# Ordered so that ids are assigned the same way whatever the run.
INSERT_PRICE_LINES = """
INSERT INTO app.price_lines (
    dossier_number, service_id, line_id, origin, booking_version, label, quantity,
    unit_sale_amount, sale_currency, unit_purchase_amount, purchase_currency, vat_rate,
    supplier_code, source_type, source_id, created_at, created_by)
SELECT w.dossier_number, l.service_id, l.line_id, l.origin, l.booking_version, l.label, l.quantity,
       l.unit_sale_amount, l.sale_currency, l.unit_purchase_amount, l.purchase_currency, l.vat_rate,
       l.supplier_code, l.source_type, l.source_id, l.created_at, l.created_by
FROM stage_winner w
JOIN stage_line l USING (snap)
ORDER BY w.dossier_number, l.line_id
ON CONFLICT (dossier_number, booking_version, line_id) WHERE origin = 'booking' DO NOTHING;
"""

COUNTS_PER_FILE = "SELECT file, loaded, stale, unchanged FROM stage_count"

# One statement per entry, so that a profile of the load times each one.
MERGE = tuple(
    statement.strip().removesuffix(";")
    for block in (
        WINNERS,
        REJECT_STALE,
        STAGE_TOTALS,
        UPSERT_DOSSIERS,
        MERGE_TRAVELLERS,
        MERGE_SERVICES,
        MERGE_SCHEDULE,
        INSERT_PRICE_LINES,
    )
    for statement in block.split(";\n\n")
    if statement.strip()
)
