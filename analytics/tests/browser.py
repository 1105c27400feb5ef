"""What the dashboard's browser tests share: where Chromium is, how to launch it, logging in, layout checks.

The fixtures (`browser`, `page`, `phone_page`) are in this package's conftest; a test module marks itself with
`BROWSER_MARKS`, so it is skipped, saying why, only where Chromium or Playwright is missing (make test installs both).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "pw-for-tests"  # accounts.tests.factories.UserFactory
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="needs the playwright package"),
]


def log_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard/$"))


def fits(page, selector: str) -> bool:
    """The table's scroll box shows every column without scrolling sideways."""
    return bool(
        page.evaluate(
            "(s) => { const box = document.querySelector(s).closest('.table-wrap');"
            " return box.scrollWidth <= box.clientWidth + 1; }",
            selector,
        )
    )
