"""Browser test fixtures: one Switchyard server, one static site on another origin and one Chromium for the module
run; a fresh browser context (its own sessionStorage) per test, with a screenshot in var/browser-failures/ when a test
fails."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.browser import chromium_path, static_site
from tests.support.server import RunningServer, running_server

SCREENSHOTS = Path(__file__).resolve().parents[3] / "var" / "browser-failures"
_FAILED = pytest.StashKey[bool]()
PAGES = Path(__file__).with_name("pages")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True  # the page fixture takes its screenshot at teardown
    return report


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for this package's tests. Package scope, not session: Playwright's sync API keeps an event loop
    running on the main thread while it is open, and every later test that calls ``asyncio.run`` would fail."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="package")
def other_origin() -> Iterator[str]:
    """The base URL of a static site on another port (another origin), serving tests/e2e/browser/pages."""
    with static_site(PAGES) as url:
        yield url


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory, other_origin: str) -> Iterator[RunningServer]:
    """A real `switchyard serve` whose CORS lets the other origin's pages call it."""
    chromium_path()  # skip before paying for a server start when there is no browser
    env = {"SWITCHYARD_HTTP_CORS_ORIGINS": other_origin, "SWITCHYARD_LOGGING_LEVEL": "WARNING"}
    with running_server(tmp_path_factory.mktemp("browser"), env) as running:
        yield running


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    if request.node.stash.get(_FAILED, False):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        opened.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()
