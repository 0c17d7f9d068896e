"""The console in a real headless Chromium (Debian's `chromium`, driven by Playwright; never a browser
Playwright downloads) against gunicorn and a real worker. Without a Chromium executable the tests
skip, saying so; CI installs one (scripts/install_system_deps.sh). Screenshots go to
artifacts/screenshots/."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import settings_env
from tests.support.gunicorn import gunicorn_server
from tests.support.processes import REPO_ROOT, CeleryWorker

#: Resolves after the layout of a resize has been painted (a chart redraws on its ResizeObserver).
NEXT_FRAMES = "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
WIDTHS = (1280, 390)
#: Chunks smaller than the default, so a 1,000-row batch moves in several steps.
BULK_CHUNK_SIZE = "100"
#: Catches Content-Security-Policy violations from the first script on; Playwright injects it outside
#: the page's policy.
WATCH_CSP = """window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => window.__cspViolations.push(
  {directive: event.violatedDirective, blocked: event.blockedURI, source: event.sourceFile}));"""


def chromium_executable() -> str | None:
    for candidate in (os.environ.get("SAMO_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def pytest_collection_modifyitems(config, items):
    if chromium_executable() is None:
        skip = pytest.mark.skip(reason="no Chromium executable (install Debian's chromium, or set SAMO_CHROMIUM)")
        for item in items:
            if Path(__file__).parent in item.path.parents:
                item.add_marker(skip)


@dataclass
class PageWatch:
    """What went wrong on a page: console errors, uncaught exceptions, CSP violations."""

    page: object
    errors: list[str] = field(default_factory=list)

    def problems(self) -> list:
        return [*self.errors, *self.page.evaluate("window.__cspViolations || []")]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_executable(), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def console_server(settings, tmp_path_factory) -> Iterator[str]:
    """gunicorn (gevent workers, as deployed) serving the console and the API."""
    with gunicorn_server(settings, tmp_path_factory.mktemp("console-gunicorn"),
                         SAMO_BULK_CHUNK_SIZE=BULK_CHUNK_SIZE) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def console_worker(settings):
    """One real worker taking interactive (`cpu`) and batch (`bulk`) jobs, with the real model."""
    worker = CeleryWorker({**settings_env(settings), "SAMO_BULK_CHUNK_SIZE": BULK_CHUNK_SIZE}, queues=("cpu", "bulk"))
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def watched_page(browser, console_server) -> Iterator[PageWatch]:
    """A page of a fresh browser context (no storage shared with other tests), at 1280 px, in UTC."""
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900}, timezone_id="UTC",
                                  base_url=console_server)
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    watch = PageWatch(page)
    page.on("console", lambda message: message.type == "error" and watch.errors.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: watch.errors.append(f"pageerror: {error}"))
    yield watch
    context.close()


def sign_in(page, api_key: str) -> None:
    page.goto("/console")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#nav:not([hidden])")


def screenshot(page, name: str) -> None:
    """The page at each console width, as artifacts/screenshots/<name>-<width>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.evaluate(NEXT_FRAMES)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


@pytest.fixture
def live_events(app) -> None:
    """The console shows results through live events (`POST /v1/events/tickets`, then `EventSource`),
    which the `events` branch builds; until it is merged, the tests that watch them skip and say so."""
    if not any(rule.rule == "/v1/events/tickets" for rule in app.url_map.iter_rules()):
        pytest.skip("waits for the live events of branch `events` (POST /v1/events/tickets is not served)")
