"""`python -m bench --scale small|medium|full [--only FIGURE] [--out PATH]`: run, report, fail on a miss."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench import harness
from bench.report import Figure, failed, write_report

FIGURES = (
    "ingest",
    "matching",
    "regulations",
    "reconciliation",
    "search",
    "browser",
    "dashboards",
    "export",
    "concurrency",
    "dbt",
    "pipeline",
)


def run(scale: harness.Scale, only: str | None, out: Path, profile: bool = True) -> list[Figure]:
    """Measure the selected figures on a fresh bench database and write the report to `out`."""
    from bench import ingest

    # The search, dbt and pipeline figures keep a cached dataset in a database of their own (bench/search.py).
    own_dataset = only in ("search", "browser", "dbt", "pipeline")
    url = harness.server_url() if own_dataset else harness.bench_database(scale.name, only)
    figures: list[Figure] = []
    notes: list[str] = []
    load_before = os.getloadavg()[0]
    if only in (None, "ingest"):
        figures += ingest.measure(scale, url, profile=profile)
        notes += ingest.NOTES
    if only in (None, "matching"):
        found, note = _matching(scale, url)
        figures += found
        notes += [note] if note else []
    if only in (None, "regulations"):
        from bench import regulations

        figures += regulations.measure(scale, url)
    if only in (None, "reconciliation"):
        from bench import reconciliation

        figures += reconciliation.measure(scale, url)
    if only in (None, "search"):
        from bench import search

        figures += search.measure(scale)
        notes += search.NOTES
    if only in (None, "browser"):
        from bench import browser

        figures += browser.measure(scale)
    if only in (None, "dashboards"):
        from bench import dashboards

        figures += dashboards.measure(scale)
    if only in (None, "export"):
        from bench import export

        figures += export.measure(scale, url)
    if only in (None, "concurrency"):
        from bench import load

        figures += load.measure(scale, url)
    if only in (None, "dbt"):
        from bench import dbt_build

        figures += dbt_build.measure(scale)
    if only in (None, "pipeline"):
        from bench import pipeline

        figures += pipeline.measure(scale)
    # Other work on a shared machine slows the baseline and ours alike, but not equally: say how busy it was.
    notes.append(
        f"Load average (1 min) on the {os.cpu_count()} cores: {load_before:.1f} when this run started, "
        f"{os.getloadavg()[0]:.1f} when it ended."
    )
    command = f"python -m bench --scale {scale.name}" + (f" --only {only}" if only else "")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_report(out, figures, harness.describe(harness.machine(url)), when, command, notes)
    return figures


# (days, new dossiers a day) of the dataset the matching is scored on: invoices arrive days to
# weeks after the services, so it needs weeks of activity rather than one big day.
MATCHING_DATA = {"tiny": (10, 5), "small": (60, 20), "medium": (120, 100), "full": (365, 300)}


def _matching(scale: harness.Scale, url: str) -> tuple[list[Figure], str | None]:
    """Supplier-invoice matching against the generator's ground truth, when its parts exist."""
    try:
        from bench import matching
    except ImportError:
        return [], "Matching precision/recall: not measured, bench/matching.py is absent."
    if not list((harness.ROOT / "dbt_project" / "models").rglob("supplier_invoice_line_matches.sql")):
        return [], "Matching precision/recall: not measured, the dbt project has no supplier_invoice_line_matches."
    from backoffice.dbt_runner import run_dbt
    from backoffice.ingest.bookings import load_bookings_day
    from backoffice.ingest.supplier_invoices import load_supplier_invoices_day
    from backoffice.ingest.suppliers import load_suppliers

    days, per_day = MATCHING_DATA[scale.name]
    data = harness.landing(scale, "activity", days, per_day)
    harness.empty_database(url)
    engine = sa.create_engine(url)
    try:
        load_suppliers(data.start, data.root, engine)
        for n in range(days):
            day = data.start + timedelta(days=n)
            load_bookings_day(day, data.root, engine)
            load_supplier_invoices_day(day, data.root, engine)
        run_dbt(["run", "--select", "+supplier_invoice_line_matches"], url)
        score = matching.measure(engine, data.root / "ground_truth")
    finally:
        engine.dispose()
    about = (
        f"{days} days of generated activity ({days * per_day:,} dossiers), bookings and supplier invoices (CSV, "
        "UBL, Factur-X) loaded by the ingestion, then `dbt run` of marts.supplier_invoice_line_matches; "
        "`bench/matching.py` scores its automatic matches against the generator's ground truth "
        "(ground_truth/invoice_line_matches.csv). Precision: share of automatic matches naming the true "
        "dossier; recall: share of lines that truly belong to a dossier matched to it automatically."
    )
    details = [score.report()]
    return [
        Figure(
            "Matching: precision",
            ">= 99.9 %",
            f"{score.precision:.3%}",
            f"{score.precision / 0.999:.3f}",
            score.precision >= 0.999,
            about,
            details,
        ),
        Figure(
            "Matching: recall",
            ">= 95 %",
            f"{score.recall:.2%}",
            f"{score.recall / 0.95:.3f}",
            score.recall >= 0.95,
            "See the precision above: same run, same lines.",
        ),
    ], None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", choices=sorted(harness.SCALES), default="full")
    parser.add_argument("--only", choices=FIGURES, help="measure one figure group only")
    parser.add_argument("--out", type=Path, default=harness.ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-profile", action="store_true", help="skip the profile runs of the ingest")
    args = parser.parse_args(argv)
    figures = run(harness.SCALES[args.scale], args.only, args.out, profile=not args.no_profile)
    for f in figures:
        print(f"{f.name}: {f.measured} ({f.ratio}, target {f.target}): {'miss' if f.passed is False else 'ok'}")
    print(f"report written to {args.out}")
    missed = failed(figures)
    if missed:
        print(f"{len(missed)} target(s) missed: {', '.join(f.name for f in missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
