"""The browser figures (bench/browser.py) on a tiny scale, so that `make bench` cannot rot: the app served
by Streamlit on the search dataset, searched and a dossier opened in headless Chromium, the report written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium (make chromium)"),
]


def test_browser_figures_time_the_liste_and_the_dossier_page(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "browser.md"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bench", "--scale", "tiny", "--only", "browser", "--out", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        admin = sa.create_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text('DROP DATABASE IF EXISTS "backoffice_bench_tiny_search_data" WITH (FORCE)'))
        admin.dispose()
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
