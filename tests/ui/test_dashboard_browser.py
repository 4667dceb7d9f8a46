"""The Dashboards page in headless Chromium over a Parquet archive: an accountant logs in, opens it,
narrows it to a brand, and the page is kept as docs/images/dashboard.png."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect, sync_playwright
from test_browser import CHROMIUM, CHROMIUM_ARGS, ROOT, _free_port

sys.path.insert(0, str(ROOT))  # bench/ is not an installed package
from bench.dashboards import BRANDS, synthetic_archive

SCREENSHOT = ROOT / "docs" / "images" / "dashboard.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


@pytest.fixture
def app_url(database_url: str, db: sa.Engine, tmp_path: Path) -> Iterator[str]:
    archive = tmp_path / "archive"
    synthetic_archive(archive, 120, 150)
    f.user(db, "carla", "accountant", f.PASSWORD, locale="fr")
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            f.APP_SCRIPT,
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--client.toolbarMode",
            "viewer",
        ],
        env={**os.environ, "DATABASE_URL": database_url, "BACKOFFICE_ARCHIVE_DIR": str(archive)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start: {server.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_an_accountant_opens_the_dashboards(app_url: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1100}, locale="fr-FR")
        page.goto(app_url)
        page.get_by_label("Identifiant").fill("carla")
        page.get_by_label("Mot de passe").fill(f.PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        page.get_by_role("link", name="Tableaux de bord").click()
        expect(page.get_by_role("heading", name="Tableaux de bord")).to_be_visible(timeout=20000)
        charts = page.locator("[data-testid=stVegaLiteChart]")
        expect(charts).to_have_count(6, timeout=30000)
        expect(page.get_by_role("heading", name="Mix des statuts de facturation dans le temps")).to_be_visible()
        expect(page.get_by_role("heading", name="Marge par marque, destination et mois")).to_be_visible()

        brand = page.get_by_role("combobox", name="Marque")
        brand.click()
        page.get_by_role("option", name=BRANDS[0]).click()
        expect(brand).to_have_value(BRANDS[0])
        expect(charts).to_have_count(6, timeout=30000)
        charts.first.locator("canvas, svg").first.wait_for()
        expect(page.get_by_role("button", name="Stop")).to_be_hidden(timeout=30000)  # the run is over
        page.wait_for_timeout(1000)  # let the charts paint before the picture
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        browser.close()
    assert SCREENSHOT.stat().st_size > 50_000
