"""The benchmark harness, run end to end on a tiny scale so that `make bench` cannot rot.

It runs as `make bench` does, in a subprocess (bench/ is not an installed package), against the
test session's server: DATABASE_URL points there, so the bench database goes there too.
The search and browser figures share one dataset database: their tests live in this one file so
that `--dist loadfile` runs them on one worker, one after the other.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "docs" / "benchmarks.md"
FIGURES = (
    "Ingest: load a day of snapshots vs bare COPY (unindexed)",
    "Ingest: load a day of snapshots vs COPY into the same tables",
    "Ingest: load a day of snapshots vs a naive pandas load",
    "Ingest: load a day of snapshots vs pandas.to_sql",
    "Ingest: peak memory of the load",
)


def _bench(
    database_url: str, only: str, out: Path, drop: tuple[str, ...], timeout: int, *extra: str
) -> subprocess.CompletedProcess[str]:
    """`python -m bench --scale tiny --only <only>` as make bench runs it; the databases `drop` go after."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "bench", "--scale", "tiny", "--only", only, *extra, "--out", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,  # a hang guard
        )
    finally:
        admin = sa.create_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in drop:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_harness_measures_reports_and_fails_on_a_miss(database_url: str, tmp_path: Path) -> None:
    before = REPORT.read_bytes() if REPORT.exists() else None
    out = tmp_path / "benchmarks.md"
    # the tiny run takes 80 s on a busy 2-core machine
    proc = _bench(database_url, "ingest", out, ("backoffice_bench_tiny",), 240, "--no-profile")
    assert proc.returncode in (0, 1), proc.stderr
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| Ingest")]
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == list(FIGURES)
    for row in rows:
        cells = row.split(" | ")
        assert cells[4] in ("pass", "**FAIL**", "reference")
        assert "python -m bench --scale tiny --only ingest" in cells[7]
    assert "300 booking snapshots" in text
    measured = rows[0].split(" | ")[2]  # "<ours> rows/s vs <COPY> rows/s"
    assert all(float(part.split()[0].replace(",", "")) > 0 for part in measured.split(" vs "))
    # the exit status says whether a target was missed
    assert (proc.returncode == 1) == any("**FAIL**" in row for row in rows)
    assert (REPORT.read_bytes() if REPORT.exists() else None) == before


def test_search_figures_build_their_dataset_and_time_the_mix(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "search.md"
    proc = _bench(
        database_url, "search", out, ("backoffice_bench_tiny_search", "backoffice_bench_tiny_search_data"), 300
    )
    assert proc.returncode in (0, 1), proc.stderr
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith(("| Search", "| Dossier page"))]
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == [
        "Search: p95 of the 20-query mix, 2,000 dossiers",
        "Dossier page data: p95, 2,000 dossiers",
    ]
    assert all(float(row.split(" | ")[2].split()[0]) > 0 for row in rows)
    assert (proc.returncode == 1) == any("**FAIL**" in row for row in rows)
    # every query of the mix ran, and the ones aimed at a sampled dossier found it
    per_query = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in text.splitlines()}
    for query in ("number, exact", "e-mail, whole", "supplier reference", "last name with a typo"):
        assert int(per_query[query][3].rstrip(" |").replace(",", "")) >= 1, query
    assert "distinct search terms" in text


def test_dbt_figures_build_their_dataset_time_both_builds_and_undo_the_day(database_url: str) -> None:
    from bench import dbt_build, harness

    scale = harness.SCALES["tiny"]
    url = make_url(database_url).set(database="backoffice_bench_tiny_dbt_data")
    engine = sa.create_engine(url)
    try:
        # Narrowed to the matching chain and the searches' copies (models and their tests) to keep
        # the suite fast.
        narrow = (
            "--select",
            "+supplier_invoice_line_matches",
            "+dossier_billing_status",
            "+int_search__dossier_status",
            "+int_search__invoice_summary",
            "int_search__pending_dossiers",
            "--exclude",
            "resource_type:unit_test",
            "--indirect-selection",
            "cautious",
        )
        full, daily, searches = dbt_build.measure(scale, narrow)
        assert full.name == "dbt: full build, 2,000 dossiers" and full.target == "<= 300 s"
        assert daily.name == "dbt: daily incremental build, 2,000 dossiers" and daily.target == "<= 60 s"
        assert full.passed == (float(full.measured.split()[0]) <= 300)
        assert "int_matching_candidates" in full.details[0] and "python -m bench --scale tiny --only dbt" in full.about
        assert "60 dossiers changed" in daily.about
        assert searches.name == "Accountants' document searches p95, 2,000 dossiers" and searches.target == "< 1 s"
        # The log keeps the dataset load's `everything` row (int_mart_changes_applied is not selected).
        assert "the live views whole" in searches.about and "every supplier invoice" in searches.details[0]
        assert searches.passed == (float(searches.measured.split()[0]) < 1000)
        with engine.connect() as conn:
            one = conn.execute(
                sa.text(
                    """SELECT (SELECT count(*) FROM app.services)::float / count(*),
                              (SELECT count(*) FROM app.price_lines)::float / count(*),
                              (SELECT count(DISTINCT supplier_code) FROM app.price_lines)
                       FROM app.dossiers"""
                )
            ).one()
            assert 2.5 < one[0] < 3.5 and 3.5 < one[1] < 4.5 and one[2] >= 10
            states = dict(
                conn.execute(sa.text("SELECT state, count(*) FROM marts.supplier_invoice_line_matches GROUP BY 1"))
                .tuples()
                .all()
            )
            lines = sum(states.values())
            assert states["auto_matched"] > 0.7 * lines and states.get("unmatched", 0) > 0, states
            # Every sale total is the sum of its lines, the day's supplement included.
            drift = """SELECT count(*) FROM app.dossiers d WHERE sale_total <> (
                           SELECT sum(unit_sale_amount * quantity) FROM app.price_lines p
                           WHERE p.dossier_number = d.dossier_number)"""
            assert conn.execute(sa.text(drift)).scalar_one() == 0
            assert (
                conn.execute(sa.text("SELECT count(*) FROM app.payments WHERE payment_id LIKE 'DAY-%'")).scalar() == 54
            )
        dbt_build._reset_day(str(url.render_as_string(hide_password=False)))
        with engine.connect() as conn:
            assert conn.execute(sa.text(drift)).scalar_one() == 0
            assert (
                conn.execute(sa.text("SELECT count(*) FROM app.price_lines WHERE line_id LIKE 'DAY-%'")).scalar() == 0
            )
            assert conn.execute(sa.text("SELECT to_regclass('public.bench_day_before')")).scalar() is None
    finally:
        engine.dispose()
        admin = sa.create_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text('DROP DATABASE IF EXISTS "backoffice_bench_tiny_dbt_data" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium (make chromium)")
def test_browser_figures_time_the_liste_and_the_dossier_page(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "browser.md"
    proc = _bench(database_url, "browser", out, ("backoffice_bench_tiny_search_data",), 300)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith(("| Liste search in", "| Dossier page in"))]
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == [
        "Liste search in the browser: p95, 2,000 dossiers",
        "Dossier page in the browser: p95, 2,000 dossiers",
    ]
    assert all(float(row.split(" | ")[2].split()[0]) > 0 for row in rows)
    assert (proc.returncode == 1) == any("**FAIL**" in row for row in rows)
    # the page really showed each search's results: one dossier for its exact number
    per_query = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in text.splitlines()}
    assert per_query["number, exact"][3].startswith("1 dossiers · page 1 sur 1")
    assert set(per_query) >= {"last name with a typo", "supplier reference"}


def test_pipeline_figures_run_the_day_end_to_end_and_profile_its_steps(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "pipeline.md"
    proc = _bench(database_url, "pipeline", out, ("backoffice_bench_tiny_dbt_data",), 600)
    admin = sa.create_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        pattern = "backoffice_bench_tiny_pipeline%"
        leftovers = conn.execute(sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": pattern}).all()
    admin.dispose()
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert leftovers == []  # the copy and its Dagster storage are dropped after the run
    text = out.read_text()
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| Daily pipeline")]
    assert [row[0].lstrip("| ") for row in rows] == [
        "Daily pipeline end to end, 2,000 dossiers",
        "Daily pipeline: peak memory, 2,000 dossiers",
    ]
    wall = float(rows[0][2].split()[0])
    assert wall > 0 and rows[0][4] == ("pass" if wall <= 60 else "**FAIL**")
    assert (proc.returncode == 1) == any("**FAIL**" in " | ".join(row) for row in rows)
    # the day ran every step of the daily job, each with its time and peak memory
    steps = next(line for line in text.splitlines() if line.startswith("Steps, slowest first"))
    for step in ("ingest_bookings", "ingest_payments", "charge_balances", "dbt_models", "accounting_export"):
        assert f"{step} " in steps and "MiB" in steps
    assert "dossiers booked or changed that day" in text and "export EXP-" in text
