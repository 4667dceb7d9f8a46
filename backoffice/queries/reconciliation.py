"""The reconciliation workbench's reader: supplier invoice lines, their state, candidates and scores.

The state of a line (auto_matched, suggested, confirmed, rejected, unmatched) is computed as the
mart marts.supplier_invoice_line_matches computes it (see FROM: decisions in force first, then
the best candidate not rejected, with the thresholds of dbt_project.yml), but for the lines a
page needs only: the view computes every line at each read (~0.3 s per read at 100,000 lines).
One difference: after a rejection the mart ranks the remaining candidates again and recomputes
the confidence of the new first; the workbench shows it with the confidence matching gave it.
An `unmatch` that supersedes nothing withdraws a line's automatic match: that dossier is not
proposed again and the line is never auto_matched any more (suggested or unmatched), as in the mart.
A page is read in two steps: the line keys of the page, filtered and in key order
(keyset pagination: the page after the last key seen, so a deep page costs what the first one
does), then, for those lines only, their best candidates (intermediate.int_matching_candidates)
and the decisions in force. The page carries each line's `decision_id` (its latest decision, or
None): a service action hands it back as the version it read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Connection

from backoffice.domain.errors import InvalidInput
from backoffice.domain.money import parse_amount

STATES = ("suggested", "unmatched", "rejected", "auto_matched", "confirmed")
# What is still waiting for an accountant.
OPEN_STATES = ("suggested", "unmatched", "rejected")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
CANDIDATES = 3
MAX_REFERENCE = 100

LineKey = tuple[str, str, int]


@dataclass(frozen=True)
class Filters:
    supplier_code: str | None = None
    states: tuple[str, ...] = OPEN_STATES
    date_from: date | None = None
    date_to: date | None = None
    amount_min: Decimal | str | None = None
    amount_max: Decimal | str | None = None
    reference: str | None = None  # a piece of the line's reference, any case

    def checked(self) -> Filters:
        """The filters in normal form, or InvalidInput naming the first bad one."""
        states = tuple(self.states)
        unknown = [s for s in states if s not in STATES]
        if unknown or not states:
            raise InvalidInput("states", f"{unknown or 'none'}: choose among {', '.join(STATES)}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidInput("date_to", "is before date_from")
        low = None if self.amount_min in (None, "") else parse_amount(self.amount_min, "amount_min")
        high = None if self.amount_max in (None, "") else parse_amount(self.amount_max, "amount_max")
        if low is not None and high is not None and low > high:
            raise InvalidInput("amount_max", "is below amount_min")
        reference = (self.reference or "").strip()
        if len(reference) > MAX_REFERENCE:
            raise InvalidInput("reference", f"is longer than {MAX_REFERENCE} characters")
        supplier = (self.supplier_code or "").strip() or None
        return Filters(supplier, states, self.date_from, self.date_to, low, high, reference or None)

    def as_json(self) -> dict[str, object]:
        f = self.checked()
        return {
            "supplier_code": f.supplier_code,
            "states": list(f.states),
            "date_from": f.date_from,
            "date_to": f.date_to,
            "amount_min": f.amount_min,
            "amount_max": f.amount_max,
            "reference": f.reference,
        }


@dataclass(frozen=True)
class Candidate:
    dossier_number: str
    rank: int
    score: Decimal
    confidence: Decimal
    match_method: str


@dataclass(frozen=True)
class Decision:
    id: int
    decision: str
    dossier_number: str
    amount_incl_tax: Decimal | None
    decided_by: str


@dataclass(frozen=True)
class WorkbenchLine:
    supplier_code: str
    invoice_number: str
    line_number: int
    kind: str
    invoice_date: date
    currency: str
    reference: str | None
    description: str | None
    amount_incl_tax: Decimal
    state: str
    dossier_number: str | None  # the suggestion, the match, or the dossier last rejected
    confidence: Decimal
    match_method: str | None
    decision_id: int | None  # the line's latest decision: the version a service action expects
    candidates: tuple[Candidate, ...] = field(default=())
    # In force: matches, rejections and withdrawals of the automatic match (an unmatch that
    # supersedes nothing); the unmatch rows that undid a decision are left out.
    decisions: tuple[Decision, ...] = field(default=())

    @property
    def key(self) -> LineKey:
        return (self.supplier_code, self.invoice_number, self.line_number)


@dataclass(frozen=True)
class Difference:
    """A (dossier, supplier) row of marts.supplier_billing_status: what a write-off or a
    regulation would settle is `remaining` (invoiced - expected - written off)."""

    dossier_number: str
    supplier_code: str
    currency: str
    expected_amount: Decimal
    invoiced_amount: Decimal
    written_off_amount: Decimal
    remaining: Decimal
    status: str


@dataclass(frozen=True)
class Page:
    lines: tuple[WorkbenchLine, ...]
    next_after: LineKey | None  # hand back as `after` for the next page; None on the last one


def where(filters: Filters) -> tuple[str, dict[str, object]]:
    """The WHERE clause (over l the line, i the invoice, st its state) and its parameters;
    shared with bulk_confirm so that it confirms exactly what the page counted."""
    f = filters.checked()
    clauses = ["st.state = ANY(:states)"]
    params: dict[str, object] = {"states": list(f.states)}
    if f.supplier_code:
        clauses.append("l.supplier_code = :supplier_code")
        params["supplier_code"] = f.supplier_code
    if f.date_from:
        clauses.append("i.invoice_date >= :date_from")
        params["date_from"] = f.date_from
    if f.date_to:
        clauses.append("i.invoice_date <= :date_to")
        params["date_to"] = f.date_to
    if f.amount_min is not None:
        clauses.append("l.amount_incl_tax >= :amount_min")
        params["amount_min"] = f.amount_min
    if f.amount_max is not None:
        clauses.append("l.amount_incl_tax <= :amount_max")
        params["amount_max"] = f.amount_max
    if f.reference:
        clauses.append("upper(l.reference) LIKE :reference")
        escaped = f.reference.upper().replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        params["reference"] = f"%{escaped}%"
    return " AND ".join(clauses), params


def _thresholds() -> tuple[Decimal, Decimal]:
    """The matching's automatic threshold and suggestion floor, as dbt_project.yml sets them."""
    settings = yaml.safe_load(DBT_PROJECT.read_text(encoding="utf-8"))["vars"]
    return Decimal(str(settings["matching_auto_threshold"])), Decimal(str(settings["matching_suggestion_floor"]))


DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project" / "dbt_project.yml"
AUTO_THRESHOLD, SUGGESTION_FLOOR = _thresholds()

# One line's state, computed for that line alone as int_invoice_lines__matched computes it for all
# (reading that view costs a scan of every line; this costs two index lookups per line, so a page
# stops after its 50 lines). The decisions in force decide first; then the best candidate not
# rejected, with the confidence the matching gave it.
FROM = f"""app.supplier_invoice_lines l
    JOIN app.supplier_invoices i USING (supplier_code, invoice_number)
    CROSS JOIN LATERAL (
        SELECT bool_or(d.decision IN ('confirm', 'manual')) AS reconciled,
               bool_or(d.decision = 'manual') AS by_hand,
               (array_agg(d.dossier_number ORDER BY d.decision = 'manual' DESC, d.id DESC)
                    FILTER (WHERE d.decision IN ('confirm', 'manual')))[1] AS matched,
               array_agg(d.dossier_number ORDER BY d.id DESC) FILTER (WHERE d.decision = 'reject') AS rejected,
               array_agg(d.dossier_number) FILTER (WHERE d.decision = 'unmatch') AS withdrawn
        FROM app.reconciliation_decisions d
        WHERE d.supplier_code = l.supplier_code AND d.invoice_number = l.invoice_number
          AND d.line_number = l.line_number AND (d.decision <> 'unmatch' OR d.supersedes_id IS NULL)
          AND NOT EXISTS (SELECT 1 FROM app.reconciliation_decisions x WHERE x.supersedes_id = d.id)
    ) dec
    LEFT JOIN LATERAL (
        SELECT c.dossier_number, c.confidence, c.match_method
        FROM intermediate.int_matching_candidates c
        WHERE c.supplier_code = l.supplier_code AND c.invoice_number = l.invoice_number
          AND c.line_number = l.line_number
          AND c.dossier_number <> ALL(coalesce(dec.rejected, '{{}}') || coalesce(dec.withdrawn, '{{}}'))
        ORDER BY c.candidate_rank
        LIMIT 1
    ) best ON true
    CROSS JOIN LATERAL (
        SELECT CASE
                   WHEN dec.reconciled THEN 'confirmed'
                   WHEN best.confidence >= {AUTO_THRESHOLD} AND dec.withdrawn IS NULL THEN 'auto_matched'
                   WHEN best.confidence >= {SUGGESTION_FLOOR} THEN 'suggested'
                   WHEN dec.rejected IS NOT NULL THEN 'rejected'
                   ELSE 'unmatched'
               END AS state
    ) st
    CROSS JOIN LATERAL (
        SELECT CASE
                   WHEN st.state = 'confirmed' THEN dec.matched
                   WHEN st.state IN ('auto_matched', 'suggested') THEN best.dossier_number
                   WHEN st.state = 'rejected' THEN dec.rejected[1]
               END AS dossier_number,
               CASE
                   WHEN st.state = 'confirmed' THEN 1.0
                   WHEN st.state IN ('auto_matched', 'suggested') THEN best.confidence
                   ELSE 0
               END::numeric(5, 4) AS confidence,
               CASE
                   WHEN dec.by_hand THEN 'manual'
                   WHEN st.state IN ('auto_matched', 'suggested', 'confirmed')
                       THEN coalesce(best.match_method, 'manual')
               END AS match_method
    ) m"""


PAGE_KEYS = "unnest(CAST(:s AS text[]), CAST(:i AS text[]), CAST(:n AS int[]))"
_CANDIDATES = sa.text(
    f"""SELECT supplier_code, invoice_number, line_number, dossier_number, candidate_rank, score, confidence,
              match_method
       FROM intermediate.int_matching_candidates
       WHERE (supplier_code, invoice_number, line_number) IN (SELECT * FROM {PAGE_KEYS})
         AND candidate_rank <= :top
       ORDER BY supplier_code, invoice_number, line_number, candidate_rank"""
)

_DECISIONS = sa.text(
    f"""SELECT d.supplier_code, d.invoice_number, d.line_number, d.id, d.decision, d.dossier_number,
              d.amount_incl_tax, d.decided_by, d.supersedes_id,
              NOT EXISTS (SELECT 1 FROM app.reconciliation_decisions x WHERE x.supersedes_id = d.id) AS in_force
       FROM app.reconciliation_decisions d
       WHERE (d.supplier_code, d.invoice_number, d.line_number) IN (SELECT * FROM {PAGE_KEYS})
       ORDER BY d.id"""
)


def read_page(conn: Connection, filters: Filters, *, after: LineKey | None = None, page_size: int = PAGE_SIZE) -> Page:
    """One page of lines matching `filters`, in key order, after the key `after`."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")
    clause, params = where(filters)
    if after is not None:
        clause += " AND (l.supplier_code, l.invoice_number, l.line_number) > (:a_s, :a_i, :a_n)"
        params.update({"a_s": after[0], "a_i": after[1], "a_n": int(after[2])})
    rows = conn.execute(
        sa.text(
            f"""SELECT l.supplier_code, l.invoice_number, l.line_number, i.kind, i.invoice_date, i.currency,
                       l.reference, l.description, l.amount_incl_tax, st.state, m.dossier_number, m.confidence,
                       m.match_method
                FROM {FROM}
                WHERE {clause}
                ORDER BY l.supplier_code, l.invoice_number, l.line_number
                LIMIT :limit"""
        ),
        {**params, "limit": page_size + 1},
    ).all()
    # A line split over several dossiers has one mart row per dossier: the page keeps whole lines.
    by_key: dict[LineKey, list[sa.Row]] = {}
    for r in rows:
        by_key.setdefault((r.supplier_code, r.invoice_number, r.line_number), []).append(r)
    keys = list(by_key)
    more = len(keys) > page_size or (len(rows) > page_size and len(keys) == page_size)
    keys = keys[:page_size]
    if not keys:
        return Page((), None)
    arrays = {"s": [k[0] for k in keys], "i": [k[1] for k in keys], "n": [k[2] for k in keys]}
    candidates: dict[LineKey, list[Candidate]] = {}
    for c in conn.execute(_CANDIDATES, {**arrays, "top": CANDIDATES}):
        candidates.setdefault((c.supplier_code, c.invoice_number, c.line_number), []).append(
            Candidate(c.dossier_number, c.candidate_rank, c.score, c.confidence, c.match_method)
        )
    latest: dict[LineKey, int] = {}
    in_force: dict[LineKey, list[Decision]] = {}
    for d in conn.execute(_DECISIONS, arrays):
        key = (d.supplier_code, d.invoice_number, d.line_number)
        latest[key] = d.id
        if d.in_force and (d.decision != "unmatch" or d.supersedes_id is None):
            in_force.setdefault(key, []).append(
                Decision(d.id, d.decision, d.dossier_number, d.amount_incl_tax, d.decided_by)
            )
    lines = []
    for key in keys:
        first = by_key[key][0]
        lines.append(
            WorkbenchLine(
                first.supplier_code,
                first.invoice_number,
                first.line_number,
                first.kind,
                first.invoice_date,
                first.currency,
                first.reference,
                first.description,
                first.amount_incl_tax,
                first.state,
                first.dossier_number,
                first.confidence,
                first.match_method,
                latest.get(key),
                tuple(candidates.get(key, ())),
                tuple(in_force.get(key, ())),
            )
        )
    return Page(tuple(lines), keys[-1] if more else None)


def line_state(conn: Connection, key: LineKey) -> tuple[str, str | None] | None:
    """(state, dossier) of one line as the workbench shows it; None if the line does not exist."""
    row = conn.execute(
        sa.text(
            f"""SELECT st.state, m.dossier_number FROM {FROM}
                WHERE l.supplier_code = :s AND l.invoice_number = :i AND l.line_number = :n"""
        ),
        {"s": key[0], "i": key[1], "n": key[2]},
    ).first()
    return None if row is None else (row.state, row.dossier_number)


def count_suggestions(conn: Connection, filters: Filters) -> int:
    """How many suggested lines match `filters`: what a bulk confirm of them would confirm."""
    clause, params = where(Filters(**{**filters.checked().__dict__, "states": ("suggested",)}))
    return int(conn.execute(sa.text(f"SELECT count(*) FROM {FROM} WHERE {clause}"), params).scalar_one())


def count_lines(conn: Connection, filters: Filters) -> int:
    clause, params = where(filters)
    return int(conn.execute(sa.text(f"SELECT count(*) FROM {FROM} WHERE {clause}"), params).scalar_one())


_DIFFERENCE = sa.text(
    """SELECT dossier_number, supplier_code, currency, expected_amount, invoiced_amount, written_off_amount,
              remaining_difference AS remaining, status
       FROM marts.supplier_billing_status
       WHERE dossier_number = :d AND supplier_code = :s"""
)


def difference(conn: Connection, dossier_number: str, supplier_code: str) -> Difference | None:
    """The billing status of one (dossier, supplier), or None when nothing is expected nor invoiced."""
    row = conn.execute(_DIFFERENCE, {"d": dossier_number, "s": supplier_code}).first()
    return None if row is None else Difference(**row._mapping)
