"""The dossier's "Supplier invoices" tab: the invoice lines matched or suggested to one dossier, and
the billing status per supplier, as marts.supplier_invoice_line_matches and
marts.supplier_billing_status state them, read for that dossier alone.

Reading the marts filtered on a dossier still computes every invoice line (the matching view is
one plan over all lines: seconds at 100,000 lines). This reader finds the dossier's lines by
index (its candidates in intermediate.int_matching_candidates, its decisions in
app.reconciliation_decisions), computes each line's state as int_invoice_lines__matched does
(decisions in force first, per line and dossier the latest; then the best candidate not rejected,
with the thresholds of dbt_project.yml), then the billing status as the mart does, over the
dossier's rows only (same currency rules and rates), with the expected amounts computed from the
dossier's own price lines as dossier_price_lines and int_expected__by_dossier_supplier do. One
known difference, as in the workbench: after a rejection the mart ranks the remaining candidates
again and recomputes the new first one's confidence; this reader keeps the confidence matching
gave it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Connection

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project" / "dbt_project.yml"
_VARS = yaml.safe_load(DBT_PROJECT.read_text(encoding="utf-8"))["vars"]
AUTO_THRESHOLD = Decimal(str(_VARS["matching_auto_threshold"]))
SUGGESTION_FLOOR = Decimal(str(_VARS["matching_suggestion_floor"]))
TOLERANCE = Decimal(str(_VARS["billing_tolerance"]))
# How the tab names a line's state: a confirmed line matched by hand (or split) is `manual`.
SHOWN_STATES = ("automatic", "suggested", "confirmed", "manual")
BILLING_STATUSES = ("not_invoiced", "partially_invoiced", "invoiced", "over_invoiced")


@dataclass(frozen=True)
class MatchedLine:
    supplier_code: str
    supplier_name: str | None
    invoice_number: str
    line_number: int
    kind: str
    invoice_date: date
    currency: str
    reference: str | None
    description: str | None
    line_amount: Decimal  # the line's amount tax included
    allocated: Decimal  # this dossier's part: the whole line unless an accountant split it
    state: str  # as the mart: auto_matched, suggested, confirmed
    match_method: str
    confidence: Decimal

    @property
    def shown_state(self) -> str:
        if self.state == "auto_matched":
            return "automatic"
        if self.state == "confirmed" and self.match_method == "manual":
            return "manual"
        return self.state

    @property
    def is_split(self) -> bool:
        return self.allocated != self.line_amount


@dataclass(frozen=True)
class SupplierBilling:
    supplier_code: str
    supplier_name: str | None
    currency: str
    expected_amount: Decimal
    invoiced_amount: Decimal
    difference: Decimal
    tolerance: Decimal
    status: str
    last_invoice_date: date | None
    written_off_amount: Decimal  # write-offs net of undos: the status takes them as settled


@dataclass(frozen=True)
class DossierSupplierInvoices:
    lines: tuple[MatchedLine, ...]
    billing: tuple[SupplierBilling, ...]
    built: bool = True  # False before dbt first built the matching and the seeds: nothing to read yet


# The dossier's lines: those it is a candidate of, or has a decision on (two index lookups).
_ROWS = f"""
keys AS (
    SELECT supplier_code, invoice_number, line_number
    FROM intermediate.int_matching_candidates WHERE dossier_number = :d
    UNION
    SELECT supplier_code, invoice_number, line_number
    FROM app.reconciliation_decisions WHERE dossier_number = :d
),
lines AS (
    SELECT l.supplier_code, l.invoice_number, l.line_number, i.kind, i.invoice_date, i.currency, l.reference,
           l.description, l.amount_incl_tax AS line_amount, dec.*, best.dossier_number AS best_dossier,
           best.match_method AS best_method, best.confidence AS best_confidence
    FROM keys k
    JOIN app.supplier_invoice_lines l USING (supplier_code, invoice_number, line_number)
    JOIN app.supplier_invoices i USING (supplier_code, invoice_number)
    -- Per dossier the latest decision in force, as int_invoice_lines__matched's pair_decisions.
    CROSS JOIN LATERAL (
        SELECT bool_or(p.decision = 'manual') AS any_manual,
               bool_or(p.decision = 'manual' AND p.dossier_number = :d) AS manual_here,
               max(p.amount_incl_tax) FILTER (WHERE p.decision = 'manual' AND p.dossier_number = :d) AS manual_part,
               (array_agg(p.dossier_number ORDER BY p.decided_at DESC, p.id DESC)
                    FILTER (WHERE p.decision = 'confirm'))[1] AS confirmed_dossier,
               array_agg(p.dossier_number) FILTER (WHERE p.decision = 'reject') AS rejected,
               -- an `unmatch` replacing nothing withdraws an automatic match: that pair is never
               -- proposed again and the line is at most suggested
               (SELECT array_agg(u.dossier_number) FROM app.reconciliation_decisions u
                WHERE u.supplier_code = l.supplier_code AND u.invoice_number = l.invoice_number
                  AND u.line_number = l.line_number AND u.decision = 'unmatch' AND u.supersedes_id IS NULL
                  AND NOT EXISTS (SELECT 1 FROM app.reconciliation_decisions x WHERE x.supersedes_id = u.id)
               ) AS withdrawn
        FROM (
            SELECT DISTINCT ON (d.dossier_number) d.*
            FROM app.reconciliation_decisions d
            WHERE d.supplier_code = l.supplier_code AND d.invoice_number = l.invoice_number
              AND d.line_number = l.line_number
              AND NOT EXISTS (SELECT 1 FROM app.reconciliation_decisions x WHERE x.supersedes_id = d.id)
            ORDER BY d.dossier_number, d.decided_at DESC, d.id DESC
        ) p
    ) dec
    LEFT JOIN LATERAL (
        SELECT c.dossier_number, c.match_method, c.confidence
        FROM intermediate.int_matching_candidates c
        WHERE c.supplier_code = l.supplier_code AND c.invoice_number = l.invoice_number
          AND c.line_number = l.line_number
          AND c.dossier_number <> ALL(coalesce(dec.rejected, '{{}}') || coalesce(dec.withdrawn, '{{}}'))
        ORDER BY c.candidate_rank
        LIMIT 1
    ) best ON true
),
rows AS (
    SELECT supplier_code, invoice_number, line_number, kind, invoice_date, currency, reference, description,
           line_amount, coalesce(manual_part, line_amount) AS allocated, 'confirmed' AS state,
           'manual' AS match_method, 1.0 AS confidence
    FROM lines WHERE any_manual AND manual_here
    UNION ALL
    SELECT supplier_code, invoice_number, line_number, kind, invoice_date, currency, reference, description,
           line_amount, line_amount, 'confirmed',
           CASE WHEN best_dossier = :d THEN best_method ELSE 'manual' END, 1.0
    FROM lines WHERE NOT coalesce(any_manual, false) AND confirmed_dossier = :d
    UNION ALL
    SELECT supplier_code, invoice_number, line_number, kind, invoice_date, currency, reference, description,
           line_amount, line_amount,
           CASE WHEN best_confidence >= {AUTO_THRESHOLD} AND withdrawn IS NULL THEN 'auto_matched'
                ELSE 'suggested' END,
           best_method, best_confidence
    FROM lines
    WHERE NOT coalesce(any_manual, false) AND confirmed_dossier IS NULL
      AND best_dossier = :d AND best_confidence >= {SUGGESTION_FLOOR}
)"""

_LINES = sa.text(
    f"""WITH {_ROWS}
        SELECT r.*, s.name AS supplier_name
        FROM rows r LEFT JOIN app.suppliers s USING (supplier_code)
        ORDER BY r.supplier_code, r.invoice_date, r.invoice_number, r.line_number"""
)

# supplier_billing_status's computation for one dossier (same CTEs, filtered on it).
_BILLING = sa.text(
    f"""WITH {_ROWS},
counted AS (
    SELECT supplier_code, currency, invoice_date,
           CASE WHEN kind = 'credit_note' THEN -allocated ELSE allocated END AS signed_amount
    FROM rows WHERE state IN ('auto_matched', 'confirmed')
),
-- int_expected__by_dossier_supplier for this dossier, from the tables: the mart dossier_price_lines
-- it reads computes every dossier's Devis when filtered on one (its lines are a shared CTE).
-- Active lines: booking lines of the current platform version and every line recorded here, not a
-- cancelled service's (but its cancellation fee), neither end of a reversed pair; confirmed or
-- cancelled dossiers only.
devis AS (
    SELECT l.id, l.reverses_id, l.origin, l.service_id, l.supplier_code, l.purchase_currency, l.purchase_total
    FROM app.price_lines l
    JOIN app.dossiers d ON d.dossier_number = l.dossier_number
    WHERE l.dossier_number = :d AND d.status IN ('confirmed', 'cancelled')
      AND (l.origin <> 'booking' OR l.booking_version = d.platform_version)
),
reversed AS (
    SELECT r.id FROM devis r JOIN devis o ON o.id = r.reverses_id
    UNION
    SELECT o.id FROM devis r JOIN devis o ON o.id = r.reverses_id
),
expected_lines AS (
    SELECT coalesce(l.supplier_code, s.supplier_code)::text AS supplier_code, l.purchase_currency::text AS currency,
           sum(l.purchase_total)::numeric(14, 2) AS expected_amount
    FROM devis l
    LEFT JOIN app.services s ON s.dossier_number = :d AND s.service_id = l.service_id
    WHERE (s.status IS DISTINCT FROM 'cancelled' OR l.origin = 'cancellation_fee')
      AND NOT EXISTS (SELECT 1 FROM reversed x WHERE x.id = l.id)
      AND coalesce(l.supplier_code, s.supplier_code) IS NOT NULL
    GROUP BY 1, 2
),
rates AS (
    SELECT currency::text AS currency,
           CASE WHEN row_number() OVER (PARTITION BY currency ORDER BY rate_date) = 1
               THEN date '1900-01-01' ELSE rate_date END AS valid_from,
           coalesce(lead(rate_date) OVER (PARTITION BY currency ORDER BY rate_date), date '9999-12-31') AS valid_to,
           rate_to_eur
    FROM reference.exchange_rates
),
suppliers AS (SELECT supplier_code FROM expected_lines UNION SELECT supplier_code FROM counted),
row_currency AS (
    SELECT k.supplier_code,
           coalesce(
               (SELECT CASE WHEN count(DISTINCT e.currency) = 1 THEN min(e.currency) END
                FROM expected_lines e WHERE e.supplier_code = k.supplier_code),
               s.currency,
               (SELECT min(c.currency) FROM counted c WHERE c.supplier_code = k.supplier_code)
           )::text AS currency
    FROM suppliers k LEFT JOIN app.suppliers s USING (supplier_code)
),
expected AS (
    SELECT r.supplier_code,
           sum(CASE WHEN e.currency = r.currency THEN e.expected_amount
               ELSE round(e.expected_amount * fr.rate_to_eur / tr.rate_to_eur, 2) END) AS expected_amount
    FROM row_currency r
    JOIN expected_lines e USING (supplier_code)
    LEFT JOIN rates fr ON fr.currency = e.currency AND current_date >= fr.valid_from AND current_date < fr.valid_to
    LEFT JOIN rates tr ON tr.currency = r.currency AND current_date >= tr.valid_from AND current_date < tr.valid_to
    GROUP BY r.supplier_code
),
invoiced AS (
    SELECT r.supplier_code,
           sum(CASE WHEN c.currency = r.currency THEN c.signed_amount
               ELSE round(c.signed_amount * fr.rate_to_eur / tr.rate_to_eur, 2) END) AS invoiced_amount,
           count(*) AS matched_lines,
           max(c.invoice_date) AS last_invoice_date
    FROM row_currency r
    JOIN counted c USING (supplier_code)
    LEFT JOIN rates fr ON fr.currency = c.currency AND c.invoice_date >= fr.valid_from AND c.invoice_date < fr.valid_to
    LEFT JOIN rates tr ON tr.currency = r.currency AND c.invoice_date >= tr.valid_from AND c.invoice_date < tr.valid_to
    GROUP BY r.supplier_code
),
-- Write-offs net of their undos, in the row currency (another currency at today's rate).
written_off AS (
    SELECT r.supplier_code,
           sum(CASE WHEN w.currency = r.currency THEN w.amount
               ELSE round(w.amount * fr.rate_to_eur / tr.rate_to_eur, 2) END) AS written_off_amount
    FROM row_currency r
    JOIN app.write_offs w ON w.dossier_number = :d AND w.supplier_code = r.supplier_code
    LEFT JOIN rates fr ON fr.currency = w.currency AND current_date >= fr.valid_from AND current_date < fr.valid_to
    LEFT JOIN rates tr ON tr.currency = r.currency AND current_date >= tr.valid_from AND current_date < tr.valid_to
    GROUP BY r.supplier_code
),
amounts AS (
    SELECT r.supplier_code, r.currency, coalesce(e.expected_amount, 0) AS e, coalesce(i.invoiced_amount, 0) AS i,
           coalesce(w.written_off_amount, 0) AS w,
           CAST(:tolerance AS numeric(14, 2)) AS t, i.last_invoice_date, coalesce(i.matched_lines, 0) AS matched_lines
    FROM row_currency r
    LEFT JOIN expected e USING (supplier_code)
    LEFT JOIN invoiced i USING (supplier_code)
    LEFT JOIN written_off w USING (supplier_code)
)
SELECT a.supplier_code, s.name AS supplier_name, a.currency, a.e::numeric(14, 2) AS expected_amount,
       a.i::numeric(14, 2) AS invoiced_amount, (a.i - a.e)::numeric(14, 2) AS difference, a.t AS tolerance,
       -- A written-off difference counts as settled: E is taken as E + W.
       CASE
           WHEN a.i = 0 AND a.e + a.w <> 0 THEN 'not_invoiced'
           WHEN abs(a.i - a.e - a.w) <= a.t THEN 'invoiced'
           WHEN a.i > a.e + a.w + a.t THEN 'over_invoiced'
           ELSE 'partially_invoiced'
       END AS status,
       a.last_invoice_date, a.w::numeric(14, 2) AS written_off_amount
FROM amounts a LEFT JOIN app.suppliers s USING (supplier_code)
WHERE a.e <> 0 OR a.matched_lines > 0
ORDER BY a.supplier_code"""
)


def read(conn: Connection, dossier_number: str) -> DossierSupplierInvoices:
    """The supplier invoice lines of one dossier (split lines: its part) and its billing per supplier."""
    built = conn.execute(
        sa.text(
            "SELECT to_regclass('intermediate.int_matching_candidates') IS NOT NULL "
            "AND to_regclass('reference.exchange_rates') IS NOT NULL"
        )
    ).scalar_one()
    if not built:
        return DossierSupplierInvoices((), (), built=False)
    params = {"d": dossier_number}
    lines = tuple(
        MatchedLine(
            r.supplier_code,
            r.supplier_name,
            r.invoice_number,
            r.line_number,
            r.kind,
            r.invoice_date,
            r.currency.strip(),
            r.reference,
            r.description,
            r.line_amount,
            r.allocated,
            r.state,
            r.match_method,
            Decimal(r.confidence).quantize(Decimal("0.0001")),
        )
        for r in conn.execute(_LINES, params)
    )
    billing = tuple(SupplierBilling(**r._mapping) for r in conn.execute(_BILLING, {**params, "tolerance": TOLERANCE}))
    return DossierSupplierInvoices(lines, billing)
