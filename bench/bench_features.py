"""What budgets and the response cache cost (or save) per request.

Run: `.venv/bin/python -m bench.bench_features`. Budgets cannot be switched off in the product (a gateway
that can silently stop enforcing limits is a liability), so their cost is measured directly: the reserve
statement and the settle statement, each timed on the same async pool the gateway uses. The cache is
measured through the gateway: the same prompt again (a hit) against a new prompt each time (a miss).
"""

from __future__ import annotations

import asyncio
import os
import time
from decimal import Decimal

import httpx

from bench.common import (
    BENCH_DB,
    BENCH_REDIS,
    fake_upstream,
    gateway,
    median,
    percentile,
    prepare_database,
    table,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ["DATABASE_URL"] = BENCH_DB
os.environ["REDIS_URL"] = BENCH_REDIS


async def budget_round_trips(
    callers: list[tuple[int, int | None]], n: int
) -> list[tuple[list[float], list[float]]]:
    """Reserve and settle timings per caller (user id, key id), the callers taking turns so that drift of
    the machine affects each the same."""
    from budgets.hotpath import abudget_reserve, settle_statement
    from config.db import close_pools, run_script

    timings: list[tuple[list[float], list[float]]] = [([], []) for _ in callers]
    for i in range(n):
        for (user_id, key_id), (reserve, settle) in zip(callers, timings, strict=True):
            started = time.perf_counter()
            reservation = await abudget_reserve(
                user_id=user_id, api_key_id=key_id, amount=Decimal("0.0001"), request_id=f"bench-{i}"
            )
            reserve.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await run_script([settle_statement(reservation_id=reservation, actual_cost=Decimal("0.00005"))])
            settle.append((time.perf_counter() - started) * 1000)
    await close_pools()
    return timings


def _team_key_with_three_windows(user_id: int) -> int:
    """A team key (the bench user a member) under a key window and the team's daily and monthly windows."""
    from accounts.models import ApiKey, Team, TeamMembership
    from budgets.models import Budget

    team, _ = Team.objects.get_or_create(name="bench-team")
    TeamMembership.objects.get_or_create(team=team, user_id=user_id)
    key = ApiKey.objects.filter(team=team).first()
    if key is None:
        from accounts.services import api_key_issue

        key, _ = api_key_issue(user=team.members.get(pk=user_id), name="bench-team-key", team=team)
    big = Decimal("1000000")
    Budget.objects.get_or_create(scope="key", api_key=key, period="daily", defaults={"admin_limit_usd": big})
    Budget.objects.get_or_create(scope="team", team=team, period="daily", defaults={"admin_limit_usd": big})
    Budget.objects.get_or_create(scope="team", team=team, period="monthly", defaults={"admin_limit_usd": big})
    return key.pk


async def cache_latencies(url: str, key: str, n: int) -> tuple[list[float], list[float]]:
    headers = {"Authorization": f"Bearer {key}"}
    hits, misses = [], []
    async with httpx.AsyncClient(timeout=30) as client:
        same = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "cached prompt"}]}
        await client.post(url, json=same, headers=headers)
        for i in range(n):
            started = time.perf_counter()
            response = await client.post(url, json=same, headers=headers)
            hits.append((time.perf_counter() - started) * 1000)
            assert response.headers["X-Router-Cache"] == "hit"
            new = {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": f"fresh {i} {time.time_ns()}"}],
            }
            started = time.perf_counter()
            await client.post(url, json=new, headers=headers)
            misses.append((time.perf_counter() - started) * 1000)
    return hits, misses


def main() -> None:
    key = prepare_database()
    import django

    django.setup()
    from accounts.models import User

    user_id = User.objects.get(username="bench").pk
    team_key = _team_key_with_three_windows(user_id)
    (reserve, settle), (reserve3, settle3) = asyncio.run(
        budget_round_trips([(user_id, None), (user_id, team_key)], 300)
    )
    rows = [
        ["reserve, one window (one statement)", median(reserve), percentile(reserve, 99), 1.0],
        [
            "reserve, three windows (one statement)",
            median(reserve3),
            percentile(reserve3, 99),
            median(reserve3) / median(reserve),
        ],
        ["settle, one window (durable commit)", median(settle), percentile(settle, 99), 1.0],
        [
            "settle, three windows (durable commit)",
            median(settle3),
            percentile(settle3, 99),
            median(settle3) / median(settle),
        ],
    ]
    print(table("Budget bookkeeping per request (ms)", ["step", "p50", "p99", "x one window"], rows))
    print()
    with fake_upstream(cpu=0) as upstream, gateway(upstream.url, cpu=1) as (url, _pid):
        hits, misses = asyncio.run(cache_latencies(url + "/v1/chat/completions", key, 200))
    rows = [
        ["cache hit", median(hits), percentile(hits, 99)],
        ["cache miss", median(misses), percentile(misses, 99)],
    ]
    print(table("Response cache through the gateway (ms, upstream at 0 ms)", ["kind", "p50", "p99"], rows))


if __name__ == "__main__":
    main()
