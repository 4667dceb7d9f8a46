"""Set-based SQL that merges the staged invoices of one day into raw.* and app.supplier_invoice*.

Run in order, in the caller's transaction, after `stage_invoice_line` (complete invoices only)
and `stage_rejection` are filled by COPY. (supplier_code, invoice_number) is the invoice's key
and `invoice_sha256` its content: an invoice is `new` when no invoice holds its key yet (the
run's first file wins), `unchanged` when the one held has the same content, `conflict`
otherwise: every line of it is reported, and what is held is never replaced.
"""

from __future__ import annotations

LINE_COLUMNS = "line_number, reference, description, amount_excl_tax, vat_rate, amount_incl_tax"

CREATE_STAGE = """
CREATE TEMP TABLE stage_invoice_line (
    supplier_code   text NOT NULL,
    invoice_number  text NOT NULL,
    kind            text NOT NULL,
    invoice_date    date NOT NULL,
    due_date        date,
    currency        char(3) NOT NULL,
    line_number     integer NOT NULL,
    reference       text,
    description     text,
    amount_excl_tax numeric(14,2) NOT NULL,
    vat_rate        numeric(6,4) NOT NULL,
    amount_incl_tax numeric(14,2) NOT NULL,
    invoice_sha256  text NOT NULL,
    file            text NOT NULL,
    line            integer NOT NULL
) ON COMMIT DROP;
"""

CLASSIFY = """
CREATE TEMP TABLE stage_invoice_state ON COMMIT DROP AS
WITH deliveries AS (
    SELECT supplier_code, invoice_number, file, min(invoice_sha256) AS sha256
    FROM stage_invoice_line
    GROUP BY supplier_code, invoice_number, file
), firsts AS (
    SELECT DISTINCT ON (supplier_code, invoice_number) *
    FROM deliveries
    ORDER BY supplier_code, invoice_number, file
)
SELECT d.supplier_code, d.invoice_number, d.file, d.sha256,
       coalesce(a.source_file, f.file) AS held_file,
       CASE
           WHEN a.supplier_code IS NULL AND d.file = f.file THEN 'new'
           WHEN d.sha256 = coalesce(a.sha256, f.sha256) THEN 'unchanged'
           ELSE 'conflict'
       END AS state
FROM deliveries d
JOIN firsts f USING (supplier_code, invoice_number)
LEFT JOIN app.supplier_invoices a USING (supplier_code, invoice_number);
"""

REJECT_CONFLICTS = """
INSERT INTO stage_rejection (file, line, record_key, reason)
SELECT l.file, l.line, concat_ws('/', l.supplier_code, l.invoice_number, l.line_number),
       format('invoice %s of supplier %s was already received with different content (file %s): not replaced',
              l.invoice_number, l.supplier_code, s.held_file)
FROM stage_invoice_line l
JOIN stage_invoice_state s USING (supplier_code, invoice_number, file)
WHERE s.state = 'conflict';
"""

INSERT_RAW = f"""
INSERT INTO raw.supplier_invoice_lines (
    supplier_code, invoice_number, kind, invoice_date, due_date, currency, {LINE_COLUMNS},
    invoice_sha256, file, line)
SELECT l.supplier_code, l.invoice_number, l.kind, l.invoice_date, l.due_date, l.currency, {LINE_COLUMNS},
       l.invoice_sha256, l.file, l.line
FROM stage_invoice_line l
JOIN stage_invoice_state s USING (supplier_code, invoice_number, file)
WHERE s.state = 'new'
ORDER BY l.supplier_code, l.invoice_number, l.line_number;
"""

INSERT_APP_INVOICES = """
INSERT INTO app.supplier_invoices (supplier_code, invoice_number, kind, invoice_date, due_date, currency,
                                   sha256, source_file)
SELECT DISTINCT ON (l.supplier_code, l.invoice_number)
       l.supplier_code, l.invoice_number, l.kind, l.invoice_date, l.due_date, l.currency, l.invoice_sha256, l.file
FROM stage_invoice_line l
JOIN stage_invoice_state s USING (supplier_code, invoice_number, file)
WHERE s.state = 'new'
ORDER BY l.supplier_code, l.invoice_number;
"""

INSERT_APP_LINES = f"""
INSERT INTO app.supplier_invoice_lines (supplier_code, invoice_number, {LINE_COLUMNS})
SELECT l.supplier_code, l.invoice_number, {LINE_COLUMNS}
FROM stage_invoice_line l
JOIN stage_invoice_state s USING (supplier_code, invoice_number, file)
WHERE s.state = 'new'
ORDER BY l.supplier_code, l.invoice_number, l.line_number;
"""

COUNTS_PER_FILE = """
SELECT l.file,
       count(*) FILTER (WHERE s.state = 'new') AS loaded,
       count(*) FILTER (WHERE s.state = 'conflict') AS conflicts,
       count(*) FILTER (WHERE s.state = 'unchanged') AS unchanged
FROM stage_invoice_line l
JOIN stage_invoice_state s USING (supplier_code, invoice_number, file)
GROUP BY l.file;
"""

MERGE = (CLASSIFY, REJECT_CONFLICTS, INSERT_RAW, INSERT_APP_INVOICES, INSERT_APP_LINES)
