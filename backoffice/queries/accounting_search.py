"""The accountants' searches: client invoices and credit notes, and supplier invoices, each with the
billing status of the dossiers it concerns. What can be searched by is `DocumentCriteria`; saved
searches keep it (scope `client_documents` or `supplier_invoices`) like an agent's dossier search.

Billing status is dbt's: a client document shows its dossier's `supplier_status`
(marts.dossier_billing_status); a supplier invoice shows, for each dossier its lines are matched
to, the status of that (dossier, supplier) pair (marts.supplier_billing_status). Those marts are
views over app.*, current but computed for every dossier when a page names thousands (a page of
500 supplier invoices names ~80,000 dossiers: 8 s at 100,000 dossiers). So the search reads the
copies the last build made (intermediate.int_search__*) for the dossiers and invoices the change
log (app.mart_changes) does not name, and the views, one dossier or invoice at a time, for those
it names: as current as the views. Without the copies (no build yet), with an `everything` row in
the log (a TRUNCATE, a bulk load) or more than LIVE_LIMIT dossiers changed since the build, it
reads the views whole (docs/dbt.md, "The accountants' searches").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from backoffice.domain.errors import InvalidInput
from backoffice.domain.money import parse_amount

CLIENT_DOCUMENTS = "client_documents"
SUPPLIER_INVOICES = "supplier_invoices"
SCOPES = (CLIENT_DOCUMENTS, SUPPLIER_INVOICES)
KINDS = ("invoice", "credit_note")
BILLING_STATUSES = ("not_invoiced", "partially_invoiced", "invoiced", "over_invoiced")
SORT_KEYS = ("document_date", "number", "amount", "dossier_number")
MAX_TEXT = 200
MAX_ROWS = 500
# A supplier's monthly statement names hundreds of dossiers: a row lists the first ones and counts
# them all by billing status (the full list is the invoice's own, on the reconciliation page).
SHOWN_DOSSIERS = 20


@dataclass(frozen=True)
class DocumentCriteria:
    """Every field is optional; the filters given are combined with AND. `party` is the client's
    name (client documents) or the supplier's code (supplier invoices)."""

    kinds: tuple[str, ...] = ()
    number: str | None = None
    dossier_number: str | None = None
    party: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    billing_statuses: tuple[str, ...] = ()


_TEXT = ("number", "dossier_number", "party")


def validate(criteria: DocumentCriteria) -> DocumentCriteria:
    """The same criteria, trimmed (blank text becomes None); InvalidInput names the first bad field."""
    changes: dict[str, Any] = {}
    for name in _TEXT:
        value = getattr(criteria, name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidInput(name, "must be text")
        if len(value.strip()) > MAX_TEXT:
            raise InvalidInput(name, f"is longer than {MAX_TEXT} characters")
        changes[name] = value.strip() or None
    for name, allowed in (("kinds", KINDS), ("billing_statuses", BILLING_STATUSES)):
        unknown = [v for v in getattr(criteria, name) if v not in allowed]
        if unknown:
            raise InvalidInput(name, f"{unknown[0]!r} is not one of {', '.join(allowed)}")
    for name in ("date_from", "date_to"):
        value = getattr(criteria, name)
        if value is not None and not isinstance(value, date):
            raise InvalidInput(name, f"{value!r} is not a date")
    if criteria.date_from and criteria.date_to and criteria.date_from > criteria.date_to:
        raise InvalidInput("date_to", f"{criteria.date_to.isoformat()} is before {criteria.date_from.isoformat()}")
    for name in ("amount_min", "amount_max"):
        value = getattr(criteria, name)
        if value is not None:
            changes[name] = parse_amount(value, name)
    low, high = changes.get("amount_min"), changes.get("amount_max")
    if low is not None and high is not None and low > high:
        raise InvalidInput("amount_max", f"{high} is below the minimum {low}")
    return dataclasses.replace(criteria, **changes)


def to_dict(criteria: DocumentCriteria) -> dict[str, Any]:
    """JSON-ready: only the fields that are set, dates ISO, amounts as decimal strings."""
    out: dict[str, Any] = {}
    for f in fields(criteria):
        value = getattr(criteria, f.name)
        if value is None or value == ():
            continue
        if isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def from_dict(data: dict[str, Any]) -> DocumentCriteria:
    """The inverse of `to_dict`, validated; an unknown key is refused by name."""
    known = {f.name for f in fields(DocumentCriteria)}
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name not in known:
            raise InvalidInput(name, "is not a search criterion")
        if name in ("date_from", "date_to") and isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                raise InvalidInput(name, f"{value!r} is not a date (YYYY-MM-DD)") from None
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return validate(DocumentCriteria(**values))


@dataclass(frozen=True)
class DocumentRow:
    scope: str
    number: str
    kind: str
    document_date: date
    party: str
    amount: Decimal  # incl. tax; a credit note's is negative
    currency: str
    # (dossier number, its billing status or None): the first SHOWN_DOSSIERS by number
    dossiers: tuple[tuple[str, str | None], ...]
    dossier_count: int = 0  # every dossier the document concerns
    status_counts: tuple[tuple[str, int], ...] = ()  # (billing status, dossiers), in BILLING_STATUSES order


LIVE_LIMIT = 5_000  # dossiers changed since the build read one by one; past it, the views whole
COPIES = (
    "int_search__dossier_status",
    "int_search__invoice_dossiers",
    "int_search__invoice_summary",
    "int_search__pending_dossiers",
)

# `dossier_status` and `matched` (an invoice's dossiers with their statuses): the build's copies,
# the live views for what the change log names (each read for one dossier or invoice: the views
# serve that from their indexes; `offset 0` keeps the filter inside the lateral one).
_FROM_COPIES = """
pending AS MATERIALIZED (SELECT DISTINCT dossier_number FROM intermediate.int_search__pending_dossiers),
pending_invoices AS MATERIALIZED (
    SELECT DISTINCT supplier_code, invoice_number FROM app.mart_changes WHERE invoice_number IS NOT NULL
),
dossier_status AS (
    SELECT b.dossier_number,
           CASE WHEN p.dossier_number IS NULL THEN b.supplier_status ELSE (
               SELECT v.supplier_status FROM marts.dossier_billing_status AS v
               WHERE v.dossier_number = b.dossier_number) END AS supplier_status
    FROM intermediate.int_search__dossier_status AS b
    LEFT JOIN pending AS p ON p.dossier_number = b.dossier_number
    UNION ALL
    SELECT v.dossier_number, v.supplier_status FROM pending AS p CROSS JOIN LATERAL (
        SELECT dossier_number, supplier_status FROM marts.dossier_billing_status
        WHERE dossier_number = p.dossier_number OFFSET 0) AS v
    WHERE NOT EXISTS (
        SELECT 1 FROM intermediate.int_search__dossier_status AS b WHERE b.dossier_number = p.dossier_number)
),
matched AS (
    SELECT b.supplier_code, b.invoice_number, b.dossier_number,
           CASE WHEN p.dossier_number IS NULL THEN b.status ELSE (
               SELECT v.status FROM marts.supplier_billing_status AS v
               WHERE v.dossier_number = b.dossier_number AND v.supplier_code = b.supplier_code) END AS status
    FROM intermediate.int_search__invoice_dossiers AS b
    LEFT JOIN pending AS p ON p.dossier_number = b.dossier_number
    WHERE NOT EXISTS (
        SELECT 1 FROM pending_invoices AS i
        WHERE i.supplier_code = b.supplier_code AND i.invoice_number = b.invoice_number)
    UNION ALL
    SELECT m.supplier_code, m.invoice_number, m.dossier_number, (
               SELECT v.status FROM marts.supplier_billing_status AS v
               WHERE v.dossier_number = m.dossier_number AND v.supplier_code = m.supplier_code) AS status
    FROM pending_invoices AS i CROSS JOIN LATERAL (
        SELECT DISTINCT supplier_code, invoice_number, dossier_number FROM marts.supplier_invoice_line_matches
        WHERE supplier_code = i.supplier_code AND invoice_number = i.invoice_number
            AND dossier_number IS NOT NULL OFFSET 0) AS m
),
-- The invoices whose summary (int_search__invoice_summary) a change since the build may have moved.
touched AS MATERIALIZED (
    SELECT b.supplier_code, b.invoice_number
    FROM pending AS p JOIN intermediate.int_search__invoice_dossiers AS b ON b.dossier_number = p.dossier_number
    UNION
    SELECT supplier_code, invoice_number FROM pending_invoices
),
summary AS (SELECT * FROM intermediate.int_search__invoice_summary)"""

_FROM_VIEWS = (
    """
dossier_status AS (SELECT dossier_number, supplier_status FROM marts.dossier_billing_status),
matched AS (
    SELECT DISTINCT m.supplier_code, m.invoice_number, m.dossier_number, s.status
    FROM marts.supplier_invoice_line_matches AS m
    LEFT JOIN marts.supplier_billing_status AS s
        ON s.dossier_number = m.dossier_number AND s.supplier_code = m.supplier_code
    WHERE m.dossier_number IS NOT NULL
),
-- Every invoice is counted from the views; no summary.
touched AS (SELECT supplier_code, invoice_number FROM app.supplier_invoices),
summary AS (
    SELECT NULL::text AS supplier_code, NULL::text AS invoice_number, NULL::text[] AS dossiers,
           NULL::text[] AS statuses, NULL::bigint AS dossier_count, """
    + ", ".join(f"NULL::bigint AS {s}_count" for s in BILLING_STATUSES)
    + """
    WHERE false
)"""
)

_CLIENT = """
SELECT ci.invoice_number AS number, ci.kind, ci.issue_date AS document_date,
       trim(coalesce(d.client_last_name, '') || ' ' || coalesce(d.client_first_name, '')) AS party,
       CASE WHEN ci.kind = 'credit_note' THEN -ci.total_amount ELSE ci.total_amount END AS amount,
       ci.currency, ci.dossier_number, b.supplier_status AS status
FROM app.client_invoices AS ci
JOIN app.dossiers AS d ON d.dossier_number = ci.dossier_number
LEFT JOIN dossier_status AS b ON b.dossier_number = ci.dossier_number
WHERE {where}
"""

_SUPPLIER = """
SELECT i.invoice_number AS number, i.kind, i.invoice_date AS document_date, i.supplier_code AS party,
       i.amount, i.currency, m.dossier_number, m.status
FROM invoices AS i
LEFT JOIN matched AS m USING (supplier_code, invoice_number)
WHERE {where}
"""

_INVOICES = """
invoices AS (
    SELECT * FROM (
        SELECT si.supplier_code, si.invoice_number, si.kind, si.invoice_date, si.currency,
               sum(l.amount_incl_tax) * CASE WHEN si.kind = 'credit_note' THEN -1 ELSE 1 END AS amount
        FROM app.supplier_invoices AS si
        JOIN app.supplier_invoice_lines AS l USING (supplier_code, invoice_number)
        GROUP BY si.supplier_code, si.invoice_number, si.kind, si.invoice_date, si.currency
    ) AS i
    {page}
)"""
# The page is cut on the invoices themselves, before their dossiers are read, when no criterion
# or sort is on the dossiers: an invoice names hundreds of dossiers.
_INVOICE_SORT = {"document_date": "i.invoice_date", "number": "i.invoice_number", "amount": "i.amount"}


_STATUS_COUNTS = ", ".join(f"count(*) FILTER (WHERE {{status}} = '{s}') AS {s}_count" for s in BILLING_STATUSES)


def _status_sources(conn: Connection) -> str:
    """The CTEs `dossier_status` and `matched`: the build's copies with the live views for what
    changed since, or the views whole when the copies cannot be trusted."""
    copies = conn.execute(
        sa.text("SELECT bool_and(to_regclass('intermediate.' || t) IS NOT NULL) FROM unnest(CAST(:t AS text[])) AS t"),
        {"t": list(COPIES)},
    ).scalar()
    if not copies:
        return _FROM_VIEWS
    everything, changed = conn.execute(
        sa.text(
            """SELECT EXISTS (SELECT 1 FROM app.mart_changes WHERE everything),
                      (SELECT count(*) FROM (SELECT 1 FROM intermediate.int_search__pending_dossiers
                                             LIMIT :limit + 1) AS p)"""
        ),
        {"limit": LIVE_LIMIT},
    ).one()
    return _FROM_VIEWS if everything or changed > LIVE_LIMIT else _FROM_COPIES


_SORT = {
    "document_date": "document_date",
    "number": "number",
    "amount": "amount",
    "dossier_number": "dossier_number",
}


def _like(text: str) -> str:
    """`text` matched literally inside a LIKE pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filters(scope: str, c: DocumentCriteria) -> tuple[list[str], dict[str, Any]]:
    client = scope == CLIENT_DOCUMENTS
    where: list[str] = []
    params: dict[str, Any] = {}
    number = "ci.invoice_number" if client else "i.invoice_number"
    if c.kinds:
        where.append(f"{'ci' if client else 'i'}.kind = ANY(:kinds)")
        params["kinds"] = list(c.kinds)
    if c.number:
        where.append(f"upper({number}) LIKE upper(:number)")
        params["number"] = f"%{_like(c.number)}%"
    if c.dossier_number:
        where.append(f"upper({'ci' if client else 'm'}.dossier_number) LIKE upper(:dossier)")
        params["dossier"] = f"{_like(c.dossier_number)}%"
    if c.party:
        if client:
            where.append("(d.client_last_name || ' ' || d.client_first_name) ILIKE :party")
            params["party"] = f"%{_like(c.party)}%"
        else:
            where.append("upper(i.supplier_code) = upper(:party)")
            params["party"] = c.party
    date_column = "ci.issue_date" if client else "i.invoice_date"
    if c.date_from:
        where.append(f"{date_column} >= :date_from")
        params["date_from"] = c.date_from
    if c.date_to:
        where.append(f"{date_column} <= :date_to")
        params["date_to"] = c.date_to
    amount = "(CASE WHEN ci.kind = 'credit_note' THEN -1 ELSE 1 END * ci.total_amount)" if client else "i.amount"
    if c.amount_min is not None:
        where.append(f"{amount} >= :amount_min")
        params["amount_min"] = c.amount_min
    if c.amount_max is not None:
        where.append(f"{amount} <= :amount_max")
        params["amount_max"] = c.amount_max
    if c.billing_statuses:
        where.append(f"{'b.supplier_status' if client else 'm.status'} = ANY(:statuses)")
        params["statuses"] = list(c.billing_statuses)
    return where or ["true"], params


def reads_build_copies(conn: Connection) -> bool:
    """Whether a search now reads the build's copies (else the views whole)."""
    return _status_sources(conn) == _FROM_COPIES


def search_documents(
    conn: Connection, scope: str, criteria: DocumentCriteria, sort: str = "document_date", descending: bool = True
) -> list[DocumentRow]:
    """The documents of `scope` matching `criteria` (at most MAX_ROWS), one row per document with
    every dossier it concerns and that dossier's billing status."""
    if scope not in SCOPES:
        raise InvalidInput("scope", f"{scope!r} is not one of {', '.join(SCOPES)}")
    if sort not in SORT_KEYS:
        raise InvalidInput("sort", f"{sort!r} is not one of {', '.join(SORT_KEYS)}")
    criteria = validate(criteria)
    where, params = _filters(scope, criteria)
    base = (_CLIENT if scope == CLIENT_DOCUMENTS else _SUPPLIER).format(where=" AND ".join(where))
    direction = "DESC" if descending else "ASC"
    ctes = _status_sources(conn)
    if (
        scope == SUPPLIER_INVOICES
        and sort in _INVOICE_SORT
        and not (criteria.dossier_number or criteria.billing_statuses)
    ):
        # The page first, then each invoice's dossiers read by the copy's index (supplier, invoice,
        # dossier): a page names hundreds of thousands of dossiers at 1,000,000 (759k for 500 bench
        # invoices), sorted all together they took 5 s.
        page = (
            f"WHERE {' AND '.join(where)} ORDER BY {_INVOICE_SORT[sort]} {direction} NULLS LAST, "
            f"i.invoice_number {direction}, i.supplier_code LIMIT {MAX_ROWS}"
        )

        # An invoice none of whose dossiers changed since the build: its summary as the build made
        # it; the others (`touched`), and every invoice when reading the views: recounted.
        def either(column: str) -> str:
            return f"CASE WHEN t.invoice_number IS NULL THEN s.{column} ELSE d.{column} END"

        counts = ", ".join(f"{either(f'{status}_count')} AS {status}_count" for status in BILLING_STATUSES)
        statement = f"""WITH {ctes},{_INVOICES.format(page=page)}
            SELECT i.supplier_code AS party, i.invoice_number AS number, i.kind, i.invoice_date AS document_date,
                   i.amount, i.currency,
                   ({either("dossiers")})[1:{SHOWN_DOSSIERS}] AS dossiers,
                   ({either("statuses")})[1:{SHOWN_DOSSIERS}] AS statuses,
                   coalesce({either("dossier_count")}, 0) AS dossier_count, {counts}
            FROM invoices AS i
            LEFT JOIN touched AS t ON t.supplier_code = i.supplier_code AND t.invoice_number = i.invoice_number
            LEFT JOIN summary AS s ON t.invoice_number IS NULL
                AND s.supplier_code = i.supplier_code AND s.invoice_number = i.invoice_number
            CROSS JOIN LATERAL (
                SELECT (array_agg(m.dossier_number ORDER BY m.dossier_number))[1:{SHOWN_DOSSIERS}] AS dossiers,
                       (array_agg(m.status ORDER BY m.dossier_number))[1:{SHOWN_DOSSIERS}] AS statuses,
                       count(m.dossier_number) AS dossier_count, {_STATUS_COUNTS.format(status="m.status")}
                FROM matched AS m
                WHERE t.invoice_number IS NOT NULL
                    AND m.supplier_code = i.supplier_code AND m.invoice_number = i.invoice_number
            ) AS d
            ORDER BY {_INVOICE_SORT[sort]} {direction} NULLS LAST, i.invoice_number {direction}, i.supplier_code"""
    else:
        if scope == SUPPLIER_INVOICES:
            ctes += "," + _INVOICES.format(page="")
        # Sort per document first (a supplier invoice has one row per matched dossier), then cut.
        statement = f"""WITH {ctes},
                found AS ({base}),
                documents AS (
                    SELECT party, number, any_value(kind) AS kind, any_value(document_date) AS document_date,
                           any_value(amount) AS amount, any_value(currency) AS currency,
                           min(dossier_number) AS dossier_number,
                           (array_agg(dossier_number ORDER BY dossier_number)
                               FILTER (WHERE dossier_number IS NOT NULL))[1:{SHOWN_DOSSIERS}] AS dossiers,
                           (array_agg(status ORDER BY dossier_number)
                               FILTER (WHERE dossier_number IS NOT NULL))[1:{SHOWN_DOSSIERS}] AS statuses,
                           count(dossier_number) AS dossier_count, {_STATUS_COUNTS.format(status="status")}
                    FROM found GROUP BY party, number)
            SELECT * FROM documents
            ORDER BY {_SORT[sort]} {direction} NULLS LAST, number {direction}, party
            LIMIT {MAX_ROWS}"""
    rows = conn.execute(sa.text(statement), params)
    return [
        DocumentRow(
            scope,
            r.number,
            r.kind,
            r.document_date,
            r.party,
            r.amount,
            r.currency,
            tuple(zip(r.dossiers or (), r.statuses or (), strict=True)),
            r.dossier_count,
            tuple((status, n) for status in BILLING_STATUSES if (n := getattr(r, f"{status}_count") or 0)),
        )
        for r in rows
    ]
