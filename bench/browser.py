"""Browser figures: the Liste search and the Dossier page in headless Chromium, on the search bench's data.

`python -m bench --scale small --only browser`. The app is served by Streamlit exactly as `make run`
serves it, on the search figures' cached dataset (bench/search.py: `backoffice_bench_<scale>_search_data`),
and driven by Playwright with Debian's Chromium (`make chromium`) as an agent drives it:

- **search**: the agent fills the Liste's form with one query of the search mix (the ones the form's
  text fields express: dossier number, client name with a typo, e-mail, supplier reference...), values
  drawn anew from the sampled dossiers at each repetition (so the app's 30 s cache of a search never
  answers), clicks "Rechercher"; timed from the click until the script run it started is over and the
  results table (`[data-testid=stDataFrame]`) and its caption are on screen, nothing left stale;
- **dossier page**: from a Liste showing one dossier, the agent selects its row; timed from the click
  until the Dossier page shows the dossier's heading, its section tabs and the Devis table, the run over.

"The run is over": the server's `script_finished` message for the run the click started has reached
the page (counted on its WebSocket), and the page is back to `data-test-script-state="notRunning"`
with no element marked stale and the awaited element on screen. One browser, one logged-in session,
after one untimed warm-up pass (of the searches: none at the tiny scale of the test).
"""

from __future__ import annotations

import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import harness
from bench.report import Figure

# Debian's chromium, as make chromium installs it; the browser tests use the same (playwright cannot download one here).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SEARCH_TARGET_S = 1.0
PAGE_TARGET_S = 1.5
REPEATS = {"tiny": 1, "small": 10, "medium": 10, "full": 10}  # each query of the mix, and dossier pages
LOGIN = "bench_browser"
PASSWORD = "bench browser pass phrase"  # a bench account on the bench's own database only
APP_SCRIPT = harness.ROOT / "apps" / "streamlit" / "streamlit_app.py"

# The form's text fields (French labels: the bench account's language) and the fields each query fills.
FIELDS = {
    "dossier_number": "N° de dossier",
    "client_name": "Nom du client",
    "email": "E-mail",
    "supplier_reference": "Référence fournisseur",
    "destination": "Destination",
}
MORE = ("supplier_reference", "destination")  # inside the "Plus de critères" expander
TINY = ("number, exact", "last name with a typo", "supplier reference")


def _queries() -> dict[str, Callable[[Any, random.Random], dict[str, str]]]:
    """The queries of bench/search.py's mix that the form's text fields express, with the same values."""
    from bench.search import _strip_accents, _typo

    return {
        "number, exact": lambda s, r: {"dossier_number": s.number},
        "number, first digits": lambda s, r: {"dossier_number": s.number[:-2]},
        "last name with a typo": lambda s, r: {"client_name": _typo(s.last_name, r)},
        "last and first name, typo": lambda s, r: {"client_name": f"{_typo(s.last_name, r)} {s.first_name}"},
        "first then last name, no accents": lambda s, r: {
            "client_name": _strip_accents(f"{s.first_name} {s.last_name}")
        },
        "start of a last name": lambda s, r: {"client_name": s.last_name[:4]},
        "e-mail, whole": lambda s, r: {"email": s.email.upper()},
        "e-mail, local part": lambda s, r: {"email": s.email.split("@")[0]},
        "supplier reference": lambda s, r: {"supplier_reference": s.reference.lower()},
        "destination": lambda s, r: {"destination": s.destination[:5].lower()},
    }


# Once the run is over: the page rendered what it sent, nothing left stale, `selector` on the page.
SETTLED = """(selector) => {
  const app = document.querySelector('[data-testid=stApp]');
  return app.getAttribute('data-test-script-state') === 'notRunning'
    && !document.querySelector('[data-stale=true]') && document.querySelector(selector) !== null;
}"""


class ScriptRuns:
    """Counts the script runs the server reports finished to this page, read from its WebSocket.

    Streamlit ends every run with a `script_finished` ForwardMsg; counting them tells a click's own
    run apart from the page state before it, even when the run is quicker than a frame (the page's
    "running" marker may then never be drawn)."""

    def __init__(self, page: Any) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self._message = ForwardMsg
        self.finished = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload: bytes | str) -> None:
        if isinstance(payload, str):
            return
        msg = self._message()
        try:
            msg.ParseFromString(payload)
        except Exception:
            return
        if msg.WhichOneof("type") == "script_finished" and msg.script_finished == self._message.FINISHED_SUCCESSFULLY:
            self.finished += 1


def available() -> bool:
    return Path(CHROMIUM).exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_account(url: str) -> None:
    """The bench's agent account on the bench database, created once (through the service)."""
    from backoffice.db.engine import owner_engine
    from backoffice.services.unit_of_work import UnitOfWork
    from backoffice.services.users import add_user

    engine = owner_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT 1 FROM app.users WHERE login = :l"), {"l": LOGIN}).first()
        if found is None:
            with UnitOfWork(engine) as uow:
                add_user(uow, None, LOGIN, "agent", PASSWORD, display_name="Bench", locale="fr")
    finally:
        engine.dispose()


@contextmanager
def serve(url: str) -> Iterator[str]:
    """Streamlit serving the app on `url`'s database, as `make run` does; yields the app's address."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    env.pop("BACKOFFICE_APP_DATABASE_URL", None)
    command = [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT), "--server.headless", "true"]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    address = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, env=env, cwd=harness.ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield _wait_healthy(server, address, log)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_healthy(server: subprocess.Popen[bytes], address: str, log: Any) -> str:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{address}/_stcore/health", timeout=1) as response:
                if response.status == 200:
                    return address
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"streamlit did not start: {log.read().decode()[-2000:]}") from None
            time.sleep(0.2)


def _timed_click(
    page: Any, runs: ScriptRuns, click: Callable[[], None], selector: str, timeout_s: float = 60.0
) -> float:
    """Seconds from `click()` until the run it starts has finished, is rendered and `selector` is on the page."""
    before = runs.finished
    started = time.perf_counter()
    click()
    while runs.finished == before:
        if time.perf_counter() - started > timeout_s:
            shot = harness.DATA_ROOT / "browser-timeout.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            raise TimeoutError(f"no script run finished within {timeout_s:.0f} s of the click (page: {shot})")
        page.wait_for_timeout(5)  # lets Playwright deliver the WebSocket frames
    page.wait_for_function(SETTLED, arg=selector, timeout=timeout_s * 1000, polling="raf")
    return time.perf_counter() - started


class Agent:
    """One logged-in agent in one Chromium page."""

    def __init__(self, page: Any, address: str) -> None:
        self.page = page
        self.runs = ScriptRuns(page)
        page.goto(address)
        page.get_by_label("Identifiant").fill(LOGIN)
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        page.locator("[data-testid=stDataFrame]").wait_for(timeout=120_000)
        self._more_open = False

    def _field(self, name: str) -> Any:
        return self.page.get_by_role("textbox", name=FIELDS[name], exact=True)

    def search(self, values: dict[str, str]) -> tuple[float, str]:
        """Fill the form (every text field: the ones not in `values` emptied), search; the time and caption."""
        if not self._more_open and any(name in MORE for name in values):
            self.page.get_by_text("Plus de critères").click()
            self._more_open = True
        for name in FIELDS:
            if name in MORE and not self._more_open:
                continue
            self._field(name).fill(values.get(name, ""))
        button = self.page.get_by_role("button", name="Rechercher")
        seconds = _timed_click(self.page, self.runs, button.click, "[data-testid=stDataFrame]")
        caption = self.page.get_by_text("dossiers · page").first.inner_text()
        return seconds, caption

    def open_first_row(self, number: str) -> float:
        """From a Liste showing `number` first, select its row: the time until its Dossier page is shown."""
        table = self.page.locator("[data-testid=stDataFrame]")
        table.scroll_into_view_if_needed()  # the mouse clicks at viewport coordinates
        box = table.bounding_box()
        assert box is not None
        # The grid is a canvas: a row is selected by clicking its row marker, left of the first column.
        seconds = _timed_click(
            self.page,
            self.runs,
            lambda: self.page.mouse.click(box["x"] + 16, box["y"] + 35 + 17),
            "[data-testid=stTabs] [data-testid=stDataFrame]",
        )
        heading = self.page.get_by_role("heading", name=f"{number} ·")
        heading.wait_for(timeout=5_000)  # the dossier asked for, not another one
        return seconds

    def back_to_list(self) -> None:
        self.page.get_by_role("link", name="Retour à la liste").first.click()
        self.page.get_by_role("button", name="Rechercher").wait_for(timeout=60_000)
        self._more_open = False


def run(url: str, samples: list[Any], repeats: int) -> tuple[dict[str, list[float]], list[float], dict[str, str]]:
    """Time the queries and the dossier pages; returns times (s) per query, page times, a caption per query."""
    from playwright.sync_api import sync_playwright

    queries = _queries()
    if repeats < 2:  # the tiny scale of the harness's own test: a few queries, to keep it short
        queries = {name: queries[name] for name in TINY}
    rng = random.Random(20261102)
    times: dict[str, list[float]] = {name: [] for name in queries}
    captions: dict[str, str] = {}
    pages: list[float] = []
    with serve(url) as address, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100}, locale="fr-FR")
            page.set_default_timeout(60_000)
            agent = Agent(page, address)
            picks = iter(samples * (2 + 2 * repeats * (len(queries) + 1) // max(len(samples), 1)))
            for query in queries.values() if repeats > 1 else ():  # warm-up (not at the tiny scale of the test)
                agent.search(query(next(picks), rng))
            for _ in range(repeats):
                for name, query in queries.items():
                    seconds, caption = agent.search(query(next(picks), rng))
                    times[name].append(seconds)
                    captions[name] = caption
            for i in range(repeats + 1):  # the first one untimed: the Dossier page's own warm-up
                sample = next(picks)
                agent.search({"dossier_number": sample.number})
                seconds = agent.open_first_row(sample.number)
                if i:
                    pages.append(seconds)
                agent.back_to_list()
        finally:
            browser.close()
    return times, pages, captions


def measure(scale: harness.Scale) -> list[Figure]:
    """The browser figures, on this scale's search dataset."""
    from bench import search

    n = search.DOSSIERS[scale.name]
    repeats = REPEATS[scale.name]
    if not available():
        about = f"Not measured: {CHROMIUM} is missing (`make chromium` installs Debian's Chromium)."
        return [
            Figure(f"Liste search in the browser: p95, {n:,} dossiers", "<= 1 s", "not measured", "-", False, about),
            Figure(f"Dossier page in the browser: p95, {n:,} dossiers", "<= 1.5 s", "not measured", "-", False, about),
        ]
    url, _built = search.dataset(scale)
    _ensure_account(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            samples = search._samples(conn, n, 200)
    finally:
        engine.dispose()
    random.Random(search.SEED).shuffle(samples)
    times, pages, captions = run(url, samples, repeats)
    every = [t for runs in times.values() for t in runs]
    overall, page = search.p95(every), search.p95(pages)
    rows = ["| query | p50 s | p95 s | last caption |", "| --- | --- | --- | --- |"]
    for name, runs in times.items():
        rows.append(f"| {name} | {statistics.median(runs):.2f} | {search.p95(runs):.2f} | {captions[name]} |")
    about = (
        f"{n:,} dossiers (bench/search.py's dataset). The Liste in headless Chromium (Playwright, {CHROMIUM}), "
        f"served by one Streamlit process on the same machine: {len(times)} queries of the search mix typed into "
        f"the form, {repeats} runs each with values drawn from the sampled dossiers after a warm-up pass (none at "
        "the tiny scale), timed from the click on Rechercher until the results table is rendered and the run is "
        "over (bench/browser.py). "
        "The mix's date, status, brand and shortcut queries are not typed here (the service figure above covers "
        f"them). Median over all: {statistics.median(every):.2f} s."
    )
    return [
        Figure(
            f"Liste search in the browser: p95, {n:,} dossiers",
            f"<= {SEARCH_TARGET_S:g} s",
            f"{overall:.2f} s (slowest query p95 {max(search.p95(r) for r in times.values()):.2f} s)",
            f"{overall / SEARCH_TARGET_S:.2f}",
            overall <= SEARCH_TARGET_S,
            about,
            rows,
        ),
        Figure(
            f"Dossier page in the browser: p95, {n:,} dossiers",
            f"<= {PAGE_TARGET_S:g} s",
            f"{page:.2f} s",
            f"{page / PAGE_TARGET_S:.2f}",
            page <= PAGE_TARGET_S,
            f"{len(pages)} dossiers opened from the Liste by selecting their row (after one untimed), timed from "
            "the click until the Dossier page shows the dossier's heading, its tabs and the Devis table with the "
            f"run over; p50 {statistics.median(pages):.2f} s. Each dossier is opened once: no cached page.",
        ),
    ]
