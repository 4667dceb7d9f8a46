"""The real app in headless Chromium: log in, search, open a dossier, and keep a screenshot for the README."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import APP_SCRIPT, PASSWORD
from playwright.sync_api import Page, expect, sync_playwright

from bench.browser import CHROMIUM, CHROMIUM_ARGS  # one definition of the headless browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "images" / "dossier.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(database_url: str) -> Iterator[str]:
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            APP_SCRIPT,
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
        env={**os.environ, "DATABASE_URL": database_url},
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


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": 1440, "height": 1100}, locale="fr-FR")
        browser.close()


def test_log_in_search_and_open_a_dossier(
    app_url: str, page: Page, seeded: dict[str, str], price_lines_mart: None
) -> None:
    page.goto(app_url)
    page.get_by_label("Identifiant").fill("alice")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    table = page.locator("[data-testid=stDataFrame]")
    table.wait_for()
    expect(page.get_by_text("2 dossiers · page 1 sur 1")).to_be_visible()

    page.get_by_label("Nom du client").fill("dupond")
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_text("1 dossiers · page 1 sur 1")).to_be_visible()

    # The grid is a canvas: a row is selected by clicking its row marker, left of the first column.
    box = table.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 16, box["y"] + 35 + 17)
    expect(page.get_by_role("heading", name=f"{seeded['dupont']} · DUPONT Jean")).to_be_visible(timeout=15000)
    page.get_by_role("tab", name="Devis").click()
    devis = page.locator("[data-testid=stDataFrame]").first
    devis.wait_for()
    expect(page.get_by_text("Total vente (lignes actives)")).to_be_visible()
    page.wait_for_timeout(500)  # let the grid paint before the picture
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
