"""Set-based SQL that merges the staged snapshots of one day into raw.* and app.*.

Run in order, in the caller's transaction, after `stage_booking` and `stage_rejection` are
filled by COPY. A snapshot is `unchanged` when raw.booking_snapshots already holds it (same
dossier, version and updated_at), `stale` when the dossier already has a later one applied,
`new` otherwise; the latest new snapshot of each dossier (highest version, then updated_at)
becomes the dossier's state. A version re-sent with a later updated_at replaces the state but
keeps the price lines first delivered for that version (lines are immutable; the platform
bumps the version when it changes them).
"""

from __future__ import annotations

from backoffice.db.sale_total import active_sale_total

CREATE_STAGE = """
CREATE TEMP TABLE stage_booking (
    dossier_number text NOT NULL,
    version        integer NOT NULL,
    updated_at     timestamptz NOT NULL,
    payload        jsonb NOT NULL,
    doc            jsonb NOT NULL,
    file           text NOT NULL,
    line           integer NOT NULL
) ON COMMIT DROP;
"""

CLASSIFY = """
CREATE TEMP TABLE stage_state ON COMMIT DROP AS
WITH firsts AS (
    -- the same record delivered twice (another file, or twice in one) is loaded once
    SELECT DISTINCT ON (dossier_number, version, updated_at) *
    FROM stage_booking
    ORDER BY dossier_number, version, updated_at, file, line
), applied AS (
    SELECT DISTINCT ON (b.dossier_number) b.dossier_number, b.version, b.updated_at
    FROM raw.booking_snapshots b
    WHERE b.dossier_number IN (SELECT dossier_number FROM stage_booking)
    ORDER BY b.dossier_number, b.version DESC, b.updated_at DESC
)
SELECT f.*, a.version AS applied_version, a.updated_at AS applied_updated_at,
       CASE
           WHEN EXISTS (SELECT 1 FROM raw.booking_snapshots r
                        WHERE (r.dossier_number, r.version, r.updated_at)
                            = (f.dossier_number, f.version, f.updated_at)) THEN 'unchanged'
           WHEN (a.version, a.updated_at) > (f.version, f.updated_at) THEN 'stale'
           ELSE 'new'
       END AS state
FROM firsts f LEFT JOIN applied a USING (dossier_number);

CREATE TEMP TABLE stage_winner ON COMMIT DROP AS
SELECT DISTINCT ON (dossier_number) dossier_number, version, updated_at, doc
FROM stage_state
WHERE state = 'new'
ORDER BY dossier_number, version DESC, updated_at DESC;
"""

REJECT_STALE = """
INSERT INTO stage_rejection (file, line, record_key, reason)
SELECT file, line, dossier_number,
       CASE WHEN version < applied_version
            THEN format('version %s is older than version %s already applied', version, applied_version)
            ELSE format('version %s updated at %s is older than the same version updated at %s already applied',
                        version, updated_at, applied_updated_at)
       END
FROM stage_state
WHERE state = 'stale';
"""

INSERT_SNAPSHOTS = """
INSERT INTO raw.booking_snapshots (dossier_number, version, updated_at, payload, file, line)
SELECT dossier_number, version, updated_at, payload, file, line
FROM stage_state
WHERE state = 'new'
ORDER BY dossier_number, version, updated_at;
"""

# The dossier's sale total, computed before the upsert so the row is written once: updating it
# afterwards rewrote every dossier row and all its indexes (five of them GIN) a second time.
# The Devis' definition (backoffice.db.sale_total) over the lines the dossier has once
# INSERT_PRICE_LINES has run: the version's booking lines (those stored for it already, which
# are immutable, plus the snapshot's lines not stored yet) and every line recorded here
# (adjustments, regulations...), with the snapshot's cancelled services.
STAGE_TOTALS = f"""
CREATE TEMP TABLE stage_total ON COMMIT DROP AS
WITH lines AS (
    SELECT p.dossier_number, p.service_id, p.origin, p.sale_total
    FROM stage_winner w
    JOIN app.price_lines p
      ON p.dossier_number = w.dossier_number AND p.origin = 'booking' AND p.booking_version = w.version
    UNION ALL
    SELECT p.dossier_number, p.service_id, p.origin, p.sale_total
    FROM stage_winner w
    JOIN app.price_lines p ON p.dossier_number = w.dossier_number AND p.origin <> 'booking'
    UNION ALL
    SELECT w.dossier_number, l.service_id, 'booking', (l.quantity * l.unit_sale_amount)::numeric(14,2)
    FROM stage_winner w,
         jsonb_to_recordset(w.doc -> 'lines') AS l(service_id text, line_id text, quantity integer,
                                                  unit_sale_amount numeric(14,2))
    WHERE NOT EXISTS (SELECT 1 FROM app.price_lines p
                      WHERE p.dossier_number = w.dossier_number AND p.origin = 'booking'
                        AND p.booking_version = w.version AND p.line_id = l.line_id)
), cancelled AS (
    SELECT w.dossier_number, e ->> 'service_id' AS service_id
    FROM stage_winner w, jsonb_array_elements(w.doc -> 'services') e
    WHERE e ->> 'status' = 'cancelled'
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
SELECT w.dossier_number, w.version, d.status, d.channel, d.brand, d.agency_code, d.currency,
       d.departure_date, d.return_date, d.destination, d.destination_country, d.client_id, d.client_title,
       d.client_first_name, d.client_last_name, d.client_email, d.client_phone, d.client_language,
       d.client_address, d.created_at, w.updated_at, t.sale_total
FROM stage_winner w
JOIN stage_total t USING (dossier_number),
     jsonb_populate_record(NULL::app.dossiers, w.doc) d
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

MERGE_TRAVELLERS = """
INSERT INTO app.travellers (dossier_number, traveller_id, first_name, last_name, birth_date, kind)
SELECT w.dossier_number, t.traveller_id, t.first_name, t.last_name, t.birth_date, t.kind
FROM stage_winner w, jsonb_populate_recordset(NULL::app.travellers, w.doc -> 'travellers') t
ON CONFLICT (dossier_number, traveller_id) DO UPDATE SET
    first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
    birth_date = EXCLUDED.birth_date, kind = EXCLUDED.kind;

DELETE FROM app.travellers x
USING stage_winner w
WHERE x.dossier_number = w.dossier_number
  AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(w.doc -> 'travellers') e
                  WHERE e ->> 'traveller_id' = x.traveller_id);
"""

MERGE_SERVICES = """
INSERT INTO app.services (dossier_number, service_id, kind, supplier_code, supplier_reference, label,
                          start_date, end_date, status)
SELECT w.dossier_number, s.service_id, s.kind, s.supplier_code, s.supplier_reference, s.label,
       s.start_date, s.end_date, s.status
FROM stage_winner w, jsonb_populate_recordset(NULL::app.services, w.doc -> 'services') s
ON CONFLICT (dossier_number, service_id) DO UPDATE SET
    kind = EXCLUDED.kind, supplier_code = EXCLUDED.supplier_code,
    supplier_reference = EXCLUDED.supplier_reference, label = EXCLUDED.label,
    start_date = EXCLUDED.start_date, end_date = EXCLUDED.end_date, status = EXCLUDED.status;

DELETE FROM app.services x
USING stage_winner w
WHERE x.dossier_number = w.dossier_number
  AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(w.doc -> 'services') e
                  WHERE e ->> 'service_id' = x.service_id);
"""

MERGE_SCHEDULE = """
INSERT INTO app.payment_schedule (dossier_number, seq, due_date, amount, kind, method)
SELECT w.dossier_number, p.seq, p.due_date, p.amount, p.kind, p.method
FROM stage_winner w, jsonb_populate_recordset(NULL::app.payment_schedule, w.doc -> 'payment_schedule') p
ON CONFLICT (dossier_number, seq) DO UPDATE SET
    due_date = EXCLUDED.due_date, amount = EXCLUDED.amount, kind = EXCLUDED.kind, method = EXCLUDED.method;

DELETE FROM app.payment_schedule x
USING stage_winner w
WHERE x.dossier_number = w.dossier_number
  AND x.seq > jsonb_array_length(w.doc -> 'payment_schedule');
"""

# Price lines are immutable: a new version adds its own lines, older versions' lines stay.
# Ordered so that ids are assigned the same way whatever the run.
INSERT_PRICE_LINES = """
INSERT INTO app.price_lines (
    dossier_number, service_id, line_id, origin, booking_version, label, quantity,
    unit_sale_amount, sale_currency, unit_purchase_amount, purchase_currency, vat_rate,
    supplier_code, source_type, source_id, created_at, created_by)
SELECT w.dossier_number, l.service_id, l.line_id, 'booking', w.version, l.label, l.quantity,
       l.unit_sale_amount, w.doc ->> 'currency', l.unit_purchase_amount, l.purchase_currency, l.vat_rate,
       l.supplier_code, 'booking_snapshot', w.dossier_number || '@v' || w.version, w.updated_at, 'platform'
FROM stage_winner w,
     jsonb_to_recordset(w.doc -> 'lines') AS l(
         service_id text, line_id text, label text, quantity integer, unit_sale_amount numeric(14,2),
         unit_purchase_amount numeric(14,2), purchase_currency text, vat_rate numeric(6,4),
         supplier_code text)
ORDER BY w.dossier_number, l.line_id
ON CONFLICT (dossier_number, booking_version, line_id) WHERE origin = 'booking' DO NOTHING;
"""

COUNTS_PER_FILE = """
SELECT b.file,
       count(*) FILTER (WHERE s.state = 'new') AS loaded,
       count(*) FILTER (WHERE s.state = 'stale') AS stale,
       count(*) FILTER (WHERE s.state IS NULL OR s.state = 'unchanged') AS unchanged
FROM stage_booking b
LEFT JOIN stage_state s ON s.file = b.file AND s.line = b.line
GROUP BY b.file;
"""

MERGE = (
    CLASSIFY,
    REJECT_STALE,
    INSERT_SNAPSHOTS,
    STAGE_TOTALS,
    UPSERT_DOSSIERS,
    MERGE_TRAVELLERS,
    MERGE_SERVICES,
    MERGE_SCHEDULE,
    INSERT_PRICE_LINES,
)
