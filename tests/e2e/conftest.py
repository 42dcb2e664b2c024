"""Browser fixtures: a live server with the fast block catalog and a headless Debian Chromium.

Chromium comes from Debian (``apt-get install -y chromium``; ``.ci/run`` installs it), never from
``playwright install`` (no downloads). Without it the browser tests skip locally and FAIL under CI
(``CI=true``), so CI can never pass without having run them. A failing test leaves a screenshot
in its tmp folder (the path is printed).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.server import (
    LiveServer,
    block_recommender,
    block_server,
    block_trainer,
    phrasing_model,
)

CHROMIUM = os.environ.get("RECAGENTS_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TOKEN = "e2e-token-77c1-Wm3Kq8Zr5Tx2Vb9Nc4Lp6Hd"  # 32+ random-looking characters
#: Anything but the test server is blocked and recorded: the page must work offline.
NOT_LOCAL = re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/]).*")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of the Debian Chromium binary (skip locally, fail in CI, when missing)."""
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}: apt-get install -y chromium"
        if _in_ci():
            pytest.fail(message + " (CI must run the browser tests)")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    """One headless Chromium for the session."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # a busy 2-core CI box: turns can take seconds
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Open loopback server with a fast trainer behind the "train" button."""
    from langgraph.checkpoint.memory import InMemorySaver

    from recagents.ui.app import create_app

    home = tmp_path_factory.mktemp("ui-home")
    saver = InMemorySaver()
    app = create_app(block_recommender(home, saver), trainer=block_trainer(home, saver))
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="session")
def phrasing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A chat model that takes 3 s, then writes a word every 0.15 s, as the local one can."""
    model = phrasing_model(delay_s=3.0, token_delay_s=0.15)
    with block_server(tmp_path_factory.mktemp("phrase-home"), chat_model=model) as server:
        yield server


@pytest.fixture(scope="session")
def login_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server as ``--host`` exposes it: the UI asks for a login."""
    with block_server(tmp_path_factory.mktemp("login-home"), auth_token=TOKEN) as server:
        yield server


@pytest.fixture
def external_requests() -> list[str]:
    """URLs the page tried to fetch from anywhere but the test server (blocked)."""
    return []


@pytest.fixture
def new_page(
    browser: Any, request: pytest.FixtureRequest, tmp_path: Path, external_requests: list[str]
) -> Iterator[Any]:
    """``new_page(**context_options)`` opens a page in a fresh browser context (a "person")."""
    contexts: list[Any] = []
    pages: list[Any] = []

    def block(route: Any) -> None:
        external_requests.append(route.request.url)
        route.abort()

    def make(**options: Any) -> Any:
        context = browser.new_context(**{"viewport": {"width": 1400, "height": 1000}, **options})
        context.set_default_timeout(20_000)
        context.route(NOT_LOCAL, block)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return page

    yield make
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for index, page in enumerate(pages):
            path = tmp_path / f"failure-{index}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
                print(f"screenshot of the failing page: {path}")  # noqa: T201
            except Exception as exc:  # noqa: BLE001  (a closed page must not hide the failure)
                print(f"no screenshot: {exc}")  # noqa: T201
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Any) -> Any:
    """One page in a fresh context."""
    return new_page()
