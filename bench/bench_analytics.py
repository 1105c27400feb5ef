"""Analytics at scale: median times of the usage API, the request list with searches, and the overview and
requests pages.

Usage: .venv/bin/python bench/bench_analytics.py [--rows 1000000] [--repeat 15]

Uses its own database (ANALYTICS_BENCH_DATABASE_URL, default .../router_bench_analytics): creates and migrates
it, loads the catalog, tops the bench user up to --rows request-log rows with generate_test_data (which also
rebuilds the daily rollups), then times each call in-process with Django's test client (no HTTP server, so
the figures are the application and the database: the part that grows with the log).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get(
    "ANALYTICS_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/router_bench_analytics"
)
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")

warnings.filterwarnings("ignore", message="No directory at")  # no collectstatic needed in-process

NEEDLE = "needle in a haystack"  # a rare prompt: the selective-search case
NEEDLES = 40


def create_database() -> None:
    name = DATABASE_URL.rsplit("/", 1)[1]
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {name}"],
        capture_output=True,
        check=False,
    )


def prepare(rows: int, username: str, days: int) -> str:
    """Migrates, seeds, tops up the rows; returns a raw API key for the bench user."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from accounts.services import api_key_issue, user_get_or_create
    from routing.models import GatewayRequest

    call_command("migrate", "--noinput", verbosity=0)
    call_command("seed_catalog", verbosity=0)
    user = user_get_or_create(username=username)
    have = GatewayRequest.objects.filter(user=user).count()
    if have < rows:
        print(f"generating {rows - have:,} rows for {username} (have {have:,}) ...", flush=True)
        call_command(
            "generate_test_data", "--user", username, "--count", str(rows - have), "--days", str(days)
        )
        _needles(user)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE routing_gatewayrequest")
    else:
        from analytics.services import rollups_refresh

        rollups_refresh()
    return api_key_issue(user=user, name="bench")[1]


def _needles(user: object) -> None:
    from analytics.tests.factories import GatewayRequestFactory

    for _ in range(NEEDLES):
        GatewayRequestFactory(user=user, prompt_text=f"Find the {NEEDLE} please")


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    call()  # warm-up: connection, caches, plans
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--user", default="bench-analytics")
    args = parser.parse_args()

    create_database()
    key = prepare(args.rows, args.user, args.days)

    from django.test import Client
    from rest_framework.test import APIClient

    from accounts.models import User
    from routing.models import GatewayRequest

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    page = Client()
    page.force_login(User.objects.get(username=args.user))
    total = GatewayRequest.objects.filter(user__username=args.user).count()

    def get(client: Client, url: str, **params: str) -> Callable[[], object]:
        def call() -> object:
            response = client.get(url, params)
            assert response.status_code == 200, (url, response.status_code, response.content[:300])
            return response

        return call

    cases = [
        ("GET /v1/analytics/usage?days=30", get(api, "/v1/analytics/usage", days="30")),
        ("GET /v1/analytics/usage?days=365", get(api, "/v1/analytics/usage", days="365")),
        ("GET /v1/analytics/requests (page 1)", get(api, "/v1/analytics/requests")),
        (f"GET /v1/analytics/requests?search={NEEDLE}", get(api, "/v1/analytics/requests", search=NEEDLE)),
        ("GET /v1/analytics/requests?search=haiku (~19% match)", get(api, "/v1/analytics/requests", search="haiku")),
        # the first page past the search's counting cap (10,000 matches at 20 a page): rows, not a count
        ("GET /v1/analytics/requests?search=haiku&page=501", get(api, "/v1/analytics/requests", search="haiku", page="501")),
        ("GET /v1/analytics/requests?model=gpt-4o&page=50", get(api, "/v1/analytics/requests", model="gpt-4o", page="50")),
        # no index on status (routing/migrations/0007): the newest rows of the user's index, filtered
        ("GET /v1/analytics/requests?status=error", get(api, "/v1/analytics/requests", status="error")),
        ("GET /v1/analytics/requests?status=error&page=50", get(api, "/v1/analytics/requests", status="error", page="50")),
        ("GET /dashboard/ (overview, 30 days)", get(page, "/dashboard/")),
        ("GET /dashboard/?days=90", get(page, "/dashboard/", days="90")),
        ("GET /dashboard/requests/?search=haiku", get(page, "/dashboard/requests/", search="haiku")),
    ]  # fmt: skip

    print(
        f"\nAnalytics at {total:,} request-log rows for one user ({args.repeat} runs each, after a warm-up)\n"
    )
    header = f"{'call':<58} {'median ms':>10} {'p90 ms':>8} {'min ms':>8}"
    print(header)
    print("-" * len(header))
    for name, call in cases:
        times = sorted(timed(call, args.repeat))
        p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
        print(f"{name:<58} {statistics.median(times):>10.1f} {p90:>8.1f} {times[0]:>8.1f}")


if __name__ == "__main__":
    main()
