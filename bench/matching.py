"""How well supplier invoice lines are matched to dossiers, against the generator's ground truth.

`measure(engine, ground_truth_dir)` reads marts.supplier_invoice_line_matches and
`<dir>/invoice_line_matches.csv` (the dossier each line truly belongs to) and returns precision
and recall of the automatic matches. Only lines present in both are scored: lines the database
never received (a file format not ingested yet, a rejected record) say nothing about matching.

    python -m bench.matching <ground_truth_dir>     (against the configured database)
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

Key = tuple[str, str, int]


@dataclass(frozen=True)
class MatchingScore:
    lines: int  # lines scored (in the mart and in the ground truth)
    with_dossier: int  # of which truly belong to a dossier
    auto_matched: int
    auto_correct: int
    suggested: int
    suggested_correct: int
    unmatched_with_dossier: int  # lines that have a dossier but got neither a match nor a suggestion

    @property
    def precision(self) -> float:
        """Share of automatic matches that name the true dossier."""
        return self.auto_correct / self.auto_matched if self.auto_matched else 1.0

    @property
    def recall(self) -> float:
        """Share of lines that truly belong to a dossier and were matched to it automatically."""
        return self.auto_correct / self.with_dossier if self.with_dossier else 1.0

    @property
    def recall_with_suggestions(self) -> float:
        """Same, counting a right suggestion as found (an accountant confirms it in one click)."""
        return (self.auto_correct + self.suggested_correct) / self.with_dossier if self.with_dossier else 1.0

    def report(self) -> str:
        return (
            f"lines {self.lines} (with a dossier {self.with_dossier}); auto-matched {self.auto_matched}, "
            f"precision {self.precision:.4%}, recall {self.recall:.2%}; suggested {self.suggested} "
            f"({self.suggested_correct} right), recall with suggestions {self.recall_with_suggestions:.2%}; "
            f"left unmatched {self.unmatched_with_dossier}"
        )


def read_truth(ground_truth_dir: Path) -> dict[Key, str]:
    with (ground_truth_dir / "invoice_line_matches.csv").open(newline="", encoding="utf-8") as f:
        return {
            (r["supplier_code"], r["invoice_number"], int(r["line_number"])): r["dossier_number"]
            for r in csv.DictReader(f)
        }


def measure(engine: Engine, ground_truth_dir: Path) -> MatchingScore:
    truth = read_truth(ground_truth_dir)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """SELECT supplier_code, invoice_number, line_number, dossier_number, state
                   FROM marts.supplier_invoice_line_matches"""
            )
        ).all()
    lines = with_dossier = auto = auto_ok = suggested = suggested_ok = missed = 0
    for supplier, invoice, line, dossier, state in rows:
        key = (supplier, invoice, line)
        if key not in truth:
            continue
        true_dossier = truth[key]
        lines += 1
        with_dossier += bool(true_dossier)
        if state == "auto_matched":
            auto += 1
            auto_ok += dossier == true_dossier
        elif state == "suggested":
            suggested += 1
            suggested_ok += dossier == true_dossier
        elif true_dossier:
            missed += 1
    return MatchingScore(lines, with_dossier, auto, auto_ok, suggested, suggested_ok, missed)


def load_invoice_csvs(landing_dir: Path, engine: Engine) -> int:
    """Insert the CSV supplier invoices of the landing zone straight into app.*, once each.

    A stand-in for the ingestion of supplier invoices where it is not available: no validation,
    the records the generator breaks on purpose are skipped by their shape (amount check, dates).
    """
    invoices: dict[tuple[str, str], tuple] = {}
    lines: dict[Key, tuple] = {}
    for path in sorted((landing_dir / "supplier_invoices").glob("*/*.csv")):
        with path.open(newline="", encoding="utf-8-sig") as f:
            for r in csv.DictReader(f):
                if not _well_formed(r):
                    continue
                key = (r["supplier_code"], r["invoice_number"])
                invoices.setdefault(
                    key,
                    (*key, r["kind"], r["invoice_date"], r["due_date"] or None, r["currency"], "test", str(path.name)),
                )
                lines.setdefault(
                    (*key, int(r["line_number"])),
                    (
                        *key,
                        int(r["line_number"]),
                        r["reference"] or None,
                        r["description"],
                        r["amount_excl_tax"],
                        r["vat_rate"],
                        r["amount_incl_tax"],
                    ),
                )
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.supplier_invoices (supplier_code, invoice_number, kind, invoice_date, due_date,
                       currency, sha256, source_file)
                   VALUES (:s, :n, :k, :d, :due, :c, :h, :f) ON CONFLICT DO NOTHING"""
            ),
            [dict(zip(("s", "n", "k", "d", "due", "c", "h", "f"), v, strict=True)) for v in invoices.values()],
        )
        conn.execute(
            sa.text(
                """INSERT INTO app.supplier_invoice_lines (supplier_code, invoice_number, line_number, reference,
                       description, amount_excl_tax, vat_rate, amount_incl_tax)
                   VALUES (:s, :n, :l, :r, :d, :x, :v, :i) ON CONFLICT DO NOTHING"""
            ),
            [dict(zip(("s", "n", "l", "r", "d", "x", "v", "i"), v, strict=True)) for v in lines.values()],
        )
    return len(lines)


def _well_formed(r: dict[str, str]) -> bool:
    from datetime import date
    from decimal import Decimal, InvalidOperation

    from backoffice.domain.money import CURRENCIES

    try:
        date.fromisoformat(r["invoice_date"])
        excl, rate, incl = Decimal(r["amount_excl_tax"]), Decimal(r["vat_rate"]), Decimal(r["amount_incl_tax"])
    except (ValueError, InvalidOperation):
        return False
    return (
        bool(r["invoice_number"]) and r["currency"] in CURRENCIES and abs(excl * (1 + rate) - incl) <= Decimal("0.01")
    )


if __name__ == "__main__":
    from backoffice.db.engine import get_engine

    print(measure(get_engine(), Path(sys.argv[1])).report())
