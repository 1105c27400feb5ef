"""Screenshots of every dashboard page (desktop 1280 px and phone 390 px) into bench/screenshots/.

Usage: .venv/bin/python bench/screenshots.py [--rows 5000]

Self-contained: creates its own database (SCREENSHOTS_DATABASE_URL, default .../router_screenshots), loads the
catalog and some demo traffic for user "demo" (password "demo-password"), starts `manage.py runserver` on a
free port, and drives headless Chromium (/usr/bin/chromium) through the pages with Playwright.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics.tests.browser import CHROMIUM, DESKTOP, LAUNCH_ARGS, PHONE  # noqa: E402

OUT = ROOT / "bench" / "screenshots"
DATABASE_URL = os.environ.get(
    "SCREENSHOTS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/router_screenshots"
)
USERNAME, PASSWORD = "demo", "demo-password"
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}  # the widths the browser tests check


def env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": os.environ.get("SCREENSHOTS_REDIS_URL", "redis://127.0.0.1:6379/11"),
        "LOG_LEVEL": "WARNING",
    }


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env(), check=True)


def prepare(rows: int) -> None:
    name = DATABASE_URL.rsplit("/", 1)[1]
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {name}"], check=False,
                   capture_output=True)  # fmt: skip
    manage("migrate", "--noinput", "-v", "0")
    manage(
        "shell",
        "-c",
        "from providers.services import catalog_import_bundled, catalog_seed; catalog_seed(); catalog_import_bundled()",
    )
    script = (
        "from accounts.models import User\n"
        "from routing.models import GatewayRequest\n"
        f"user, _ = User.objects.get_or_create(username={USERNAME!r})\n"
        f"user.set_password({PASSWORD!r}); user.is_staff = True; user.save()\n"
        "from decimal import Decimal\n"
        "from budgets.limits import budget_window_set\n"
        "budget_window_set(user_id=user.pk, api_key_id=None, scope='user', period='monthly', limit_usd=Decimal(25))\n"
        "print(GatewayRequest.objects.filter(user=user).count())\n"
    )
    have = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env(), check=True, capture_output=True,
        text=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    if int(have) < rows:
        manage("generate_test_data", "--user", USERNAME, "--count", str(rows - int(have)), "--days", "60")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], cwd=ROOT, env=env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return process, url
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the server did not start")


def shoot(url: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    saved = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
        for label, viewport in VIEWPORTS.items():
            page = browser.new_page(viewport=viewport, base_url=url)
            page.goto("/accounts/login/")
            page.screenshot(path=OUT / f"login-{label}.png")
            page.fill("#id_username", USERNAME)
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/dashboard/")
            detail: str | None = None
            pages = [
                ("overview", "/dashboard/"),
                ("requests", "/dashboard/requests/"),
                ("requests-search", "/dashboard/requests/?search=haiku&status=success"),
                ("models", "/dashboard/models/"),
                ("compare", "/dashboard/compare/"),
                ("budget", "/dashboard/budget/"),
                ("keys", "/dashboard/keys/"),
                ("teams", "/dashboard/teams/"),
            ]
            for name, path in pages:
                page.goto(path)
                if name == "requests":
                    detail = page.get_attribute("a.row-link", "href")
                page.wait_for_load_state("networkidle")
                page.screenshot(path=OUT / f"{name}-{label}.png", full_page=True)
                saved.append(OUT / f"{name}-{label}.png")
            if detail:
                page.goto(detail)
                page.screenshot(path=OUT / f"request-detail-{label}.png", full_page=True)
                saved.append(OUT / f"request-detail-{label}.png")
            page.close()
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5000)
    args = parser.parse_args()
    prepare(args.rows)
    process, url = serve()
    try:
        for path in shoot(url):
            print(path.relative_to(ROOT))
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
