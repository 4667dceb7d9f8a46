"""Hash-chain verification: `backoffice verify` recomputes the chains of the audit log and of the
issued client invoices and reports the first broken link of each.

The database seals every new row at commit (migration 0021): `hash` = SHA-256 of the previous
row's hash followed by the row's canonical text, `chain_seq` its place in the chain, and
audit.chain_heads the last link. Here the canonical text is recomputed from the row as it is now,
with this module's own copy of the expressions (the verifier does not trust functions stored in
the database it checks), and hashed in Python. Any direct change of a sealed row, a deleted row
(a gap in `chain_seq`, or a head that no longer matches the last row) or a row slipped in without
its seal is found. A person with the owner's rights could rewrite a whole chain consistently:
keep the printed head hashes somewhere else (the daily export's manifest, a ticket) to catch that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

GENESIS = "0" * 64
_UTC = """to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')"""

EVENT_CANONICAL = f"""jsonb_build_array(
    r.id, {_UTC.format(column="r.occurred_at")}, r.actor, r.action, r.outcome, r.dossier_number, r.before, r.after,
    r.detail)::text"""

INVOICE_CANONICAL = f"""jsonb_build_array(
    r.invoice_number, r.kind, r.brand, r.series, r.year, r.seq, r.issue_date, r.dossier_number, r.cited_invoice,
    r.reason, r.currency, r.total_amount, r.language, r.buyer, r.seller, r.xml_sha256, r.pdf_sha256, r.mail_id,
    {_UTC.format(column="r.issued_at")}, r.issued_by,
    (SELECT coalesce(jsonb_agg(jsonb_build_array(l.line_number, l.price_line_id, l.label, l.quantity, l.unit_amount)
                               ORDER BY l.line_number), '[]'::jsonb)
     FROM app.client_invoice_lines l WHERE l.invoice_number = r.invoice_number))::text"""


@dataclass(frozen=True)
class Chain:
    name: str  # also the table, and the key of audit.chain_heads
    key: str  # the column that names a row in a report
    canonical: str
    # An extra check per row: SQL giving the expected and found values of a stored digest.
    digest: tuple[str, str, str] | None = None


CHAINS = (
    Chain("audit.events", "id", EVENT_CANONICAL),
    Chain(
        "app.client_invoices",
        "invoice_number",
        INVOICE_CANONICAL,
        ("pdf", "encode(sha256(r.pdf), 'hex')", "r.pdf_sha256"),
    ),
)


@dataclass(frozen=True)
class BrokenLink:
    chain: str
    row: str  # the row's key, or '-' for the chain's head
    field: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"{self.chain} row {self.row}: {self.field} expected {self.expected}, found {self.found}"


@dataclass(frozen=True)
class ChainReport:
    chain: str
    rows: int
    head: str  # the hash of the last link (GENESIS for an empty chain)
    broken: BrokenLink | None

    def summary(self) -> str:
        if self.broken is not None:
            return f"{self.chain}: BROKEN after {self.rows} sound rows: {self.broken}"
        return f"{self.chain}: {self.rows} rows, chain intact, head {self.head}"


def _rows(conn: Connection, chain: Chain) -> Iterator[sa.Row]:
    digest = ", NULL AS digest_expected, NULL AS digest_found"
    if chain.digest is not None:
        digest = f", {chain.digest[1]} AS digest_expected, {chain.digest[2]} AS digest_found"
    query = sa.text(
        f"""SELECT r.{chain.key}::text AS key, r.chain_seq, r.prev_hash, r.hash, {chain.canonical} AS canonical
                   {digest}
            FROM {chain.name} r ORDER BY r.chain_seq NULLS LAST, r.{chain.key}"""
    )
    yield from conn.execution_options(stream_results=True, yield_per=1000).execute(query)


def verify_chain(conn: Connection, chain: Chain) -> ChainReport:
    """Walk `chain` in link order; stop at the first broken link."""
    previous, seq, rows = GENESIS, 0, 0

    def broken(row: str, field: str, expected: object, found: object) -> ChainReport:
        return ChainReport(chain.name, rows, previous, BrokenLink(chain.name, row, field, str(expected), str(found)))

    for row in _rows(conn, chain):
        if row.chain_seq is None:
            return broken(row.key, "seal", "a link in the chain", "none (written around the sealing trigger)")
        if row.chain_seq != seq + 1:
            return broken(row.key, "chain_seq", seq + 1, f"{row.chain_seq} (a row is missing before it)")
        if row.prev_hash != previous:
            return broken(row.key, "prev_hash", previous, row.prev_hash)
        recomputed = hashlib.sha256((row.prev_hash + row.canonical).encode()).hexdigest()
        if recomputed != row.hash:
            return broken(row.key, "hash", recomputed, row.hash)
        if chain.digest is not None and row.digest_expected != row.digest_found:
            return broken(row.key, f"{chain.digest[0]} sha256", row.digest_expected, row.digest_found)
        previous, seq, rows = row.hash, row.chain_seq, rows + 1
    head = conn.execute(sa.text("SELECT seq, hash FROM audit.chain_heads WHERE chain = :c"), {"c": chain.name}).first()
    found = (0, GENESIS) if head is None else (head.seq, head.hash)
    if found != (seq, previous):
        # The last rows were deleted (or the head moved): the chain ends before its head.
        return broken("-", "head", f"link {found[0]} {found[1]}", f"last row at link {seq} {previous}")
    return ChainReport(chain.name, rows, previous, None)


def verify(engine: Engine) -> list[ChainReport]:
    """Every chain's report, in one snapshot of the database."""
    with engine.connect() as conn:
        conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        return [verify_chain(conn, chain) for chain in CHAINS]
