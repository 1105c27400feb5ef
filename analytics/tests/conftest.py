"""Fixtures of the dashboard's browser tests (see analytics/tests/browser.py): one Chromium per module, a tab at
desktop width (`page`, 1280 px) and one at phone width (`phone_page`, 390 px), each failing its test on any
JavaScript error."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from analytics.tests.browser import CHROMIUM, DESKTOP, LAUNCH_ARGS, PHONE


@pytest.fixture(scope="module")
def _async_unsafe_allowed() -> Iterator[None]:
    """The ORM calls in browser tests share a thread with Playwright's event loop; only for those modules."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def browser(_async_unsafe_allowed) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
        yield chromium
        chromium.close()


def _tab(browser, live_server, viewport: dict[str, int]) -> Iterator[object]:
    context = browser.new_context(viewport=viewport, base_url=live_server.url)
    context.set_default_timeout(30_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:
    yield from _tab(browser, live_server, DESKTOP)


@pytest.fixture
def phone_page(browser, live_server) -> Iterator[object]:
    yield from _tab(browser, live_server, PHONE)
