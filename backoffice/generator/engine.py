"""The day loop: plan each new dossier's life, then write everything that falls on the day.

Outputs that fall on a later day wait in per-day buckets (already serialised), and a bucket is
dropped once written, so memory is bounded by what the booking horizon keeps pending; the day's
own booking lines are written as its dossiers are planned, a chunk at a time.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from . import malformed
from .amounts import split_vat
from .catalog import SUPPLIER_COLUMNS, SUPPLIERS, Supplier, supplier_rows
from .clock import Calendar
from .draw import between, pick
from .facturx_pdf import render_facturx
from .ground_truth import BILLING_COLUMNS, MALFORMED_COLUMNS, MATCH_COLUMNS
from .payments import COLUMNS as PAYMENT_COLUMNS
from .payments import Pending, unattributed_transfers
from .planner import PlanContext, Planned, plan_batch
from .supplier_invoices import CSV_COLUMNS, Intent, InvoiceDoc
from .ubl import render_ubl
from .writer import CsvStream, Landing, csv_line, csv_text

STATEMENT_MAX_LINES = 150
PLAN_CHUNK = 5_000  # new dossiers planned at a time
CSV_SUPPLIERS = tuple(s for s in SUPPLIERS if s.invoice_format == "csv")


@dataclass(frozen=True)
class GenerationSummary:
    dossiers: int
    booking_snapshots: int
    payments: int
    invoice_lines: int
    files: int
    malformed_records: int


class _State:
    def __init__(self, out: Path, start: date, days: int, seed: int, numbers_after: int = 0) -> None:
        self.cal = Calendar(start)
        self.end = days
        self.seed = seed
        self.landing = Landing(out)
        self.bookings: dict[int, list[str]] = defaultdict(list)
        self.payments: dict[int, list[Pending]] = defaultdict(list)
        self.intents: dict[int, dict[str, list[Intent]]] = defaultdict(lambda: defaultdict(list))
        self.resent_rows: dict[int, dict[str, list[list[str]]]] = defaultdict(lambda: defaultdict(list))
        self.resent_files: dict[int, list[tuple[str, bytes]]] = defaultdict(list)
        self.dossier_counter: dict[int, int] = defaultdict(lambda: numbers_after)
        self.invoice_counter: dict[str, int] = defaultdict(int)
        gt = out / "ground_truth"
        self.matches = CsvStream(gt / "invoice_line_matches.csv", MATCH_COLUMNS)
        self.billing = CsvStream(gt / "billing_status.csv", BILLING_COLUMNS)
        self.malformed = CsvStream(gt / "malformed.csv", MALFORMED_COLUMNS)
        self.counts = {"dossiers": 0, "snapshots": 0, "payments": 0, "invoice_lines": 0, "malformed": 0}

    def next_dossier_number(self, day: int) -> str:
        year = self.cal.date(day).year
        self.dossier_counter[year] += 1
        return f"BK-{year}-{self.dossier_counter[year]:06d}"

    def next_invoice_number(self, supplier: Supplier, kind: str, day: int) -> str:
        self.invoice_counter[supplier.code] += 1
        english = supplier.country in ("GB", "US", "TH")
        prefix = ("CN" if english else "AV") if kind == "credit_note" else ("INV" if english else "F")
        return f"{prefix}{self.cal.date(day).year}-{self.invoice_counter[supplier.code]:06d}"

    def bad(self, source: str, rel_file: str, line: int, key: str, reason: str) -> None:
        self.malformed.rows([[source, rel_file, str(line), key, reason]])
        self.counts["malformed"] += 1


def generate(
    out: Path,
    start: date,
    days: int,
    dossiers_per_day: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    numbers_after: int = 0,
) -> GenerationSummary:
    """Write `days` days of landing files from `start` under `out`, plus out/ground_truth/.

    Deterministic: the same arguments give byte-identical files. Dossier numbers of each year
    start after `numbers_after` (BK-2026-000001 by default): files for a database that already
    holds dossiers (the pipeline benchmark's) must not reuse their numbers.
    """
    if days < 1 or dossiers_per_day < 1:
        raise ValueError("days and dossiers_per_day must be at least 1")
    st = _State(Path(out), start, days, seed, numbers_after)
    reference = st.landing.root / "reference"
    reference.mkdir(parents=True, exist_ok=True)
    st.landing.write_text(reference / "suppliers.csv", csv_text(SUPPLIER_COLUMNS, supplier_rows()))
    # Returning clients: the pool is smaller than the number of dossiers.
    ctx = PlanContext(days, seed, max(500, days * dossiers_per_day * 7 // 10))
    seq = 0
    try:
        for day in range(days):
            with _BookingsFile(st, day) as bookings:
                for first in range(0, dossiers_per_day, PLAN_CHUNK):
                    batch = []
                    for _ in range(min(PLAN_CHUNK, dossiers_per_day - first)):
                        seq += 1
                        batch.append((seq, st.next_dossier_number(day), day))
                    _absorb(st, plan_batch(ctx, st.cal, batch))
                    bookings.write_pending()
                bookings.ghost = st.next_dossier_number(day)
            _write_day(st, day, dossiers_per_day, progress)
    finally:
        st.matches.close()
        st.billing.close()
        st.malformed.close()
    return GenerationSummary(
        dossiers=st.counts["dossiers"],
        booking_snapshots=st.counts["snapshots"],
        payments=st.counts["payments"],
        invoice_lines=st.counts["invoice_lines"],
        files=st.landing.files + 3,
        malformed_records=st.counts["malformed"],
    )


def _absorb(st: _State, planned: list[Planned]) -> None:
    for p in planned:
        for d, line in p.snapshots:
            st.bookings[d].append(line)
        for pending in p.payments:
            st.payments[pending[0]].append(pending)
        for intent in p.intents:
            st.intents[intent.day][intent.supplier_code].append(intent)
        st.billing.rows(p.billing)


def _write_day(st: _State, day: int, dossiers: int, progress: Callable[[int, int], None] | None) -> None:
    st.counts["dossiers"] += dossiers
    rng = random.Random(f"{st.seed}:day:{day}")
    _write_payments(st, day, rng)
    _write_invoices(st, day, rng)
    if progress is not None:
        progress(day + 1, st.end)


class _BookingsFile:
    """The day's bookings.jsonl, written as the day's dossiers are planned, PLAN_CHUNK at a time:
    a day of a million new dossiers (~2.4 GB) never sits in memory. Lines come in the order a
    whole-day write had them (updates of earlier dossiers first), then the malformed line."""

    def __init__(self, st: _State, day: int) -> None:
        self.st, self.day = st, day
        self.path = st.landing.path("bookings", st.cal.iso(day), "bookings.jsonl")
        self.first: str | None = None
        self.count = 0
        self.ghost = ""  # the dossier number of the malformed line, drawn after the day's dossiers

    def __enter__(self) -> _BookingsFile:
        self.file = self.path.open("w", encoding="utf-8", newline="")
        return self

    def write_pending(self) -> None:
        lines = self.st.bookings.pop(self.day, [])
        if lines and self.first is None:
            self.first = lines[0]
        self.count += len(lines)
        self.file.writelines(f"{ln}\n" for ln in lines)

    def __exit__(self, failed: type[BaseException] | None, *exc: object) -> None:
        if failed is not None:
            self.file.close()
            return
        self.write_pending()
        self.st.counts["snapshots"] += self.count
        if self.first is not None:
            text, reason, key = malformed.booking(self.first, self.ghost, self.day)
            self.file.write(f"{text}\n")
            self.st.bad("bookings", self.st.landing.relative(self.path), self.count + 1, key, reason)
        self.file.close()
        self.st.landing.files += 1


def _write_payments(st: _State, day: int, rng: random.Random) -> None:
    pending = st.payments.pop(day, [])
    pending += unattributed_transfers(rng, st.cal, day)
    pending.sort(key=lambda p: (p[1], p[2]))
    lines = [p[3] for p in pending]
    st.counts["payments"] += len(lines)
    path = st.landing.path("payments", st.cal.iso(day), "payments.csv")
    if lines:
        template = next(csv.reader([lines[0]]))
        row, reason, key = malformed.payment(template, f"ERR-{st.cal.compact(day)}-001", day)
        lines.append(csv_line(row))
        st.bad("payments", st.landing.relative(path), len(lines) + 1, key, reason)
    st.landing.write_text(path, csv_text(PAYMENT_COLUMNS, []) + "".join(lines))


def _orphan(supplier: Supplier, rng: random.Random, day: int) -> Intent:
    """A line for no dossier of ours: a yearly fee, or another customer's booking."""
    excl, incl = split_vat(between(rng, 2500, 15000), supplier.invoice_vat_rate)
    desc = pick(rng, ("Frais de gestion annuels", "Frais de dossier", "Prestation hors contrat"))
    return Intent(day, supplier.code, "invoice", desc, excl, incl, supplier.invoice_vat_rate, "", "empty", "")


def _group(supplier: Supplier, intents: list[Intent]) -> list[list[Intent]]:
    """Per-dossier invoices for CSV suppliers; a daily statement per kind for the others."""
    groups: dict[str, list[Intent]] = {}
    for it in intents:
        key = (it.dossier_number, it.kind) if supplier.invoice_format == "csv" else it.kind
        groups.setdefault(key, []).append(it)
    out = []
    for lines in groups.values():
        for i in range(0, len(lines), STATEMENT_MAX_LINES):
            out.append(lines[i : i + STATEMENT_MAX_LINES])
    return out


def _write_invoices(st: _State, day: int, rng: random.Random) -> None:
    todays = st.intents.pop(day, {})
    resent_rows = st.resent_rows.pop(day, {})
    iso = st.cal.iso(day)
    malformed_supplier = CSV_SUPPLIERS[day % len(CSV_SUPPLIERS)]
    for supplier in SUPPLIERS:
        intents = todays.get(supplier.code, [])
        if intents and rng.random() < (0.01 if supplier.invoice_format == "csv" else 0.05):
            intents.append(_orphan(supplier, rng, day))
        rows: list[list[str]] = []
        for lines in _group(supplier, intents):
            kind = lines[0].kind
            back = between(rng, 0, 3)
            doc = InvoiceDoc(
                supplier,
                st.next_invoice_number(supplier, kind, day),
                kind,
                st.cal.iso(day - back),
                st.cal.iso(day - back + supplier.payment_terms_days),
                tuple(lines),
            )
            st.matches.rows(
                [
                    [supplier.code, doc.number, str(n), it.dossier_number, it.reference_kind]
                    for n, it in enumerate(lines, start=1)
                ]
            )
            st.counts["invoice_lines"] += len(lines)
            resend_day = day + between(rng, 1, 10) if rng.random() < 0.03 else st.end
            if supplier.invoice_format == "csv":
                doc_rows = doc.csv_rows()
                rows += doc_rows
                if resend_day < st.end:
                    st.resent_rows[resend_day][supplier.code].extend(doc_rows)
                continue
            if supplier.invoice_format == "ubl":
                name, data = f"{supplier.code}_{doc.number}.xml", render_ubl(doc)
            else:
                name, data = f"{supplier.code}_{doc.number}.pdf", render_facturx(doc)
            st.landing.write_bytes(st.landing.path("supplier_invoices", iso, name), data)
            if resend_day < st.end:
                st.resent_files[resend_day].append((name, data))
        again = resent_rows.get(supplier.code, [])
        rows += again  # re-sent copies: not counted, the ground truth lists each line once
        if supplier is malformed_supplier and day > 0:
            number = st.next_invoice_number(supplier, "invoice", day)
            bad_row, reason, key = malformed.invoice_row(
                rng, supplier.code, supplier.currency, number, iso, st.cal.iso(day + supplier.payment_terms_days), day
            )
            rows.append(bad_row)
            path = st.landing.path("supplier_invoices", iso, f"{supplier.code}_{iso}.csv")
            st.bad("supplier_invoices", st.landing.relative(path), len(rows) + 1, key, reason)
        if rows:
            path = st.landing.path("supplier_invoices", iso, f"{supplier.code}_{iso}.csv")
            st.landing.write_text(path, csv_text(CSV_COLUMNS, rows))
    for name, data in st.resent_files.pop(day, []):
        path = st.landing.path("supplier_invoices", iso, name)
        st.landing.write_bytes(path, data)
