"""Set-based SQL that merges the staged payments of one day into raw.payments and app.payments.

Run in order, in the caller's transaction, after `stage_payment` and `stage_rejection` are
filled by COPY. payment_id is the provider's key: a staged payment is `new` when no payment
holds its id yet (the first delivery of the run wins, by file then line), `unchanged` when the
one already held has the same content, `conflict` otherwise: reported, never replacing what is held.
"""

from __future__ import annotations

CONTENT = "dossier_number, received_at, method, amount, currency, status, provider, provider_reference, payer_name"

CREATE_STAGE = """
CREATE TEMP TABLE stage_payment (
    payment_id         text NOT NULL,
    dossier_number     text,
    received_at        timestamptz NOT NULL,
    method             text NOT NULL,
    amount             numeric(14,2) NOT NULL,
    currency           char(3) NOT NULL,
    status             text NOT NULL,
    provider           text,
    provider_reference text,
    payer_name         text,
    file               text NOT NULL,
    line               integer NOT NULL
) ON COMMIT DROP;
"""

CLASSIFY = f"""
CREATE TEMP TABLE stage_payment_state ON COMMIT DROP AS
WITH firsts AS (
    SELECT DISTINCT ON (payment_id) * FROM stage_payment ORDER BY payment_id, file, line
), held AS (
    -- what the id already stands for: a loaded payment, else the run's first delivery of it
    SELECT f.payment_id,
           coalesce(r.file, f.file) AS held_file, coalesce(r.line, f.line) AS held_line,
           r.payment_id IS NOT NULL AS loaded_before,
           a.payment_id IS NOT NULL AND r.payment_id IS NULL AS recorded_by_hand,
           CASE WHEN r.payment_id IS NULL THEN ROW(f.{CONTENT.replace(", ", ", f.")})
                ELSE ROW(r.{CONTENT.replace(", ", ", r.")}) END AS content
    FROM firsts f
    LEFT JOIN raw.payments r USING (payment_id)
    LEFT JOIN app.payments a USING (payment_id)
)
SELECT s.*, h.held_file, h.held_line, h.recorded_by_hand,
       CASE
           WHEN h.recorded_by_hand THEN 'conflict'
           WHEN NOT h.loaded_before AND (s.file, s.line) = (h.held_file, h.held_line) THEN 'new'
           WHEN ROW(s.{CONTENT.replace(", ", ", s.")}) IS NOT DISTINCT FROM h.content THEN 'unchanged'
           ELSE 'conflict'
       END AS state
FROM stage_payment s JOIN held h USING (payment_id);
"""

REJECT_CONFLICTS = """
INSERT INTO stage_rejection (file, line, record_key, reason)
SELECT file, line, payment_id,
       CASE WHEN recorded_by_hand
            THEN format('payment %s is already recorded in the back-office with this id: not replaced', payment_id)
            ELSE format('payment %s was already received with different content (file %s, line %s): not replaced',
                        payment_id, held_file, held_line)
       END
FROM stage_payment_state
WHERE state = 'conflict';
"""

INSERT_RAW = f"""
INSERT INTO raw.payments (payment_id, {CONTENT}, file, line)
SELECT payment_id, {CONTENT}, file, line
FROM stage_payment_state WHERE state = 'new'
ORDER BY payment_id;
"""

INSERT_APP = f"""
INSERT INTO app.payments (payment_id, {CONTENT}, origin, created_by)
SELECT payment_id, {CONTENT}, 'ingestion', 'platform'
FROM stage_payment_state WHERE state = 'new'
ORDER BY payment_id;
"""

COUNTS_PER_FILE = """
SELECT file,
       count(*) FILTER (WHERE state = 'new') AS loaded,
       count(*) FILTER (WHERE state = 'conflict') AS conflicts,
       count(*) FILTER (WHERE state = 'unchanged') AS unchanged
FROM stage_payment_state
GROUP BY file;
"""

MERGE = (CLASSIFY, REJECT_CONFLICTS, INSERT_RAW, INSERT_APP)
