"""Soak: mixed streaming and plain load with ~5% injected provider faults; then the books must balance.

Run: `.venv/bin/python -m bench.bench_soak [--minutes 10] [--concurrency 32]`. A gateway (own database
router_soak, own Redis db 6) sits in front of the fake upstream, which a feeder keeps supplied with one-shot
fault rules (500, 502, 503, 529, 429 with Retry-After, a connection cut after two chunks) for about 5% of the
upstream calls. Afterwards it checks, from the database:
- every response that must have a log row (200, and 402/502/504) has exactly one, and no row exists for a
  response nobody received (lost or duplicated rows);
- the user's spending equals the sum of the logged costs, to the last decimal, and nothing is held;
- the gateway's memory at the end against right after warm-up (flat, not growing with requests served).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import redis

from bench.common import ROOT, fake_upstream, gateway, manage, percentile, rss_mib, table

SOAK_DB = os.environ.get("SOAK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/router_soak")
SOAK_REDIS = os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/6")
MODELS = ["gpt-4o-mini", "claude-3-5-haiku-20241022", "gemini-2.0-flash", "deepseek-chat"]
FAULTS: list[dict[str, Any]] = [
    {"status": 500},
    {"status": 502},
    {"status": 503},
    {"status": 429, "retry_after": 0.2},
    {"disconnect_after_chunks": 2},
]
ANTHROPIC_FAULT = {"status": 529}
LOGGED_STATUSES = {200, 402, 502, 504}  # a provider was involved (or the budget said no): one row each
REPEATED_PROMPTS = [f"soak repeated prompt {n}" for n in range(20)]  # some cache hits in the mix
SAMPLE_EVERY_S = 10.0


@dataclass
class Outcome:
    kind: str  # json | stream
    status: int  # HTTP status; 0 when the client saw no response at all
    request_id: str | None
    latency_ms: float
    stream_done: bool = False  # the stream ended with [DONE]
    stream_error: bool = False  # ... after an error chunk (a cut mid-way)


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    client_errors: Counter[str] = field(default_factory=Counter)
    rss: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, MiB)
    faults_injected: int = 0
    sent: int = 0


def _env() -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "DEBUG": "false",
            "DATABASE_URL": SOAK_DB, "REDIS_URL": SOAK_REDIS, "LOG_LEVEL": "WARNING"}  # fmt: skip


def prepare() -> tuple[str, str]:
    """A database of the soak's own (migrated, seeded) and a fresh user with a key; returns (username, key)."""
    name = SOAK_DB.rsplit("/", 1)[-1]
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {name}"],
        capture_output=True,
        check=False,
    )
    manage("migrate", "--noinput", env=_env())
    manage("seed_catalog", env=_env())
    redis.Redis.from_url(SOAK_REDIS).flushdb()
    username = f"soak-{int(time.time())}"
    key = manage("create_api_key", username, "--name", "soak", env=_env()).strip().splitlines()[-1]
    return username, key


def _body(counter: itertools.count[int], *, stream: bool) -> dict[str, Any]:
    roll = random.random()
    if roll < 0.1:
        prompt = random.choice(REPEATED_PROMPTS)
    else:
        prompt = f"soak prompt {next(counter)} {random.getrandbits(48):x}"
    body: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}], "max_tokens": 64}
    if roll > 0.9:
        body["model"] = "auto"  # cost-optimized: skips providers the faults put in cooldown
    else:
        body["model"] = random.choice(MODELS)
        if random.random() < 0.3:
            body["fallbacks"] = [m for m in MODELS if m != body["model"]][:1]
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


async def _one(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> Outcome:
    started = time.perf_counter()
    if not body.get("stream"):
        response = await client.post(url, json=body)
        return Outcome("json", response.status_code, response.headers.get("X-Request-Id"), _ms(started))
    async with client.stream("POST", url, json=body) as response:
        done = error = False
        async for line in response.aiter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith('data: {"error"'):
                error = True
        return Outcome(
            "stream", response.status_code, response.headers.get("X-Request-Id"), _ms(started), done, error
        )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


async def _load(url: str, key: str, run: Run, *, seconds: float, concurrency: int) -> None:
    deadline = time.monotonic() + seconds
    counter = itertools.count()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(limits=limits, timeout=60, headers=headers) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                body = _body(counter, stream=random.random() < 0.5)
                run.sent += 1
                try:
                    run.outcomes.append(await _one(client, url + "/v1/chat/completions", body))
                except httpx.HTTPError as exc:
                    run.client_errors[type(exc).__name__] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _feed_faults(upstream: Any, run: Run, *, rate: float, seconds: float) -> None:
    """Keeps one-shot fault rules coming so that about `rate` of the upstream calls meet one."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        calls = (await asyncio.to_thread(upstream.stats))["total"]
        missing = int(calls * rate) - run.faults_injected
        for _ in range(max(0, missing)):
            model = random.choice(MODELS)
            fault = random.choice([*FAULTS, ANTHROPIC_FAULT] if model.startswith("claude") else FAULTS)
            await asyncio.to_thread(upstream.control, model=model, times=1, **fault)
            run.faults_injected += 1
        await asyncio.sleep(0.25)


async def _sample_memory(pid: int, run: Run, *, seconds: float) -> None:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        run.rss.append((time.monotonic() - started, rss_mib(pid)))
        await asyncio.sleep(SAMPLE_EVERY_S)
    run.rss.append((time.monotonic() - started, rss_mib(pid)))


async def _soak(url: str, pid: int, key: str, upstream: Any, args: argparse.Namespace) -> Run:
    run = Run()
    seconds = args.minutes * 60
    await asyncio.gather(
        _load(url, key, run, seconds=seconds, concurrency=args.concurrency),
        _feed_faults(upstream, run, rate=args.fault_rate, seconds=seconds),
        _sample_memory(pid, run, seconds=seconds),
    )
    return run


def _audit(username: str, run: Run) -> dict[str, Any]:
    """The books, read from the soak database through the ORM."""
    os.environ.update(
        {k: v for k, v in _env().items() if k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")}
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db.models import Count, Sum

    from budgets.models import Budget, Reservation
    from routing.models import Attempt, GatewayRequest

    rows = GatewayRequest.objects.filter(user__username=username)
    logged = set(rows.values_list("id", flat=True))
    expected = [o.request_id for o in run.outcomes if o.status in LOGGED_STATUSES and o.request_id]
    per_id = Counter(expected)
    budget = Budget.objects.get(user__username=username)
    total = rows.aggregate(total=Sum("total_cost_usd"))["total"] or Decimal(0)
    return {
        "responses_needing_a_row": len(expected),
        "responses_seen_twice": sum(1 for n in per_id.values() if n > 1),
        "rows": len(logged),
        "lost": len(set(expected) - logged),
        "rows_without_a_response": len(logged - set(expected)),
        "rows_without_attempts": rows.filter(cached=False).annotate(n=Count("attempts")).filter(n=0).count(),
        "attempts": Attempt.objects.filter(request__user__username=username).count(),
        "cached_rows": rows.filter(cached=True).count(),
        "error_rows": rows.filter(status="error").count(),
        "sum_of_costs": total,
        "spent": budget.spent_usd,
        "reserved": budget.reserved_usd,
        "open_reservations": Reservation.objects.filter(user__username=username, status="open").count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=1, help="gateway web processes")
    args = parser.parse_args()

    username, key = prepare()
    env = {
        "DATABASE_URL": SOAK_DB,
        "REDIS_URL": SOAK_REDIS,
        "ROUTER_UPSTREAM_TIMEOUT_S": "5",
        "ROUTER_RETRY_AFTER_MAX_S": "2",
        # sized for a PostgreSQL shared with other work (max_connections 100 here)
        "DB_POOL_MAX": "6",
        "DB_ASYNC_POOL_MAX": "12",
    }
    manage("shell", "-c", _limit_script(username), env=_env())
    with (
        fake_upstream(cpu=0) as upstream,
        gateway(upstream.url, cpu=1, workers=args.workers, **env) as (url, pid),
    ):
        warm = [httpx.post(url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                           json={"model": m, "messages": [{"role": "user", "content": "warm up"}]}, timeout=30)
                for m in MODELS]  # fmt: skip
        assert all(r.status_code == 200 for r in warm), [r.text for r in warm]
        started = time.monotonic()
        run = asyncio.run(_soak(url, pid, key, upstream, args))
        run.outcomes += [Outcome("warm-up", r.status_code, r.headers.get("X-Request-Id"), 0) for r in warm]
        elapsed = time.monotonic() - started
        time.sleep(2)  # rows of streams whose clients left are written by tasks of their own
        upstream_calls = upstream.stats()["total"]
        rss_end = rss_mib(pid)
    books = _audit(username, run)
    _report(args, run, books, elapsed, upstream_calls, rss_end)
    balanced = (
        books["lost"] == 0
        and books["rows_without_a_response"] == 0
        and books["responses_seen_twice"] == 0
        and books["sum_of_costs"] == books["spent"]
        and books["reserved"] == 0
        and books["open_reservations"] == 0
    )
    return 0 if balanced else 1


def _limit_script(username: str) -> str:
    return (
        "from accounts.models import User; from budgets.limits import budget_limit_set; "
        f"budget_limit_set(user_id=User.objects.get(username={username!r}).pk, limit_usd=1000)"
    )


def _report(
    args: argparse.Namespace,
    run: Run,
    books: dict[str, Any],
    elapsed: float,
    upstream_calls: int,
    rss_end: float,
) -> None:
    statuses = Counter((o.kind, o.status) for o in run.outcomes if o.kind != "warm-up")
    streams = [o for o in run.outcomes if o.kind == "stream" and o.status == 200]
    rows = [[kind, status, n] for (kind, status), n in sorted(statuses.items())]
    print(
        table(
            f"Soak: {elapsed / 60:.1f} min, concurrency {args.concurrency}",
            ["kind", "status", "responses"],
            rows,
        )
    )
    print()
    lat = [[kind, percentile(v, 50), percentile(v, 95), percentile(v, 99)]
           for kind in ("json", "stream") if (v := [o.latency_ms for o in run.outcomes if o.kind == kind])]  # fmt: skip
    print(table("Latency (ms, all responses)", ["kind", "p50", "p95", "p99"], lat))
    print()
    warm_after = max(30.0, elapsed * 0.2)
    after_warmup = next((mib for t, mib in run.rss if t >= warm_after), run.rss[-1][1])
    peak = max(mib for _, mib in run.rss)
    print(
        table(
            "Load and faults",
            ["figure", "value"],
            [
                ["requests sent", run.sent],
                ["responses", len(run.outcomes) - len(MODELS)],
                ["client-side errors", sum(run.client_errors.values())],
                ["requests/s", (len(run.outcomes) - len(MODELS)) / elapsed],
                ["upstream calls", upstream_calls],
                ["faults injected", run.faults_injected],
                ["fault rate (of upstream calls)", f"{run.faults_injected / max(upstream_calls, 1):.2%}"],
                ["streams ending with [DONE]", f"{sum(o.stream_done for o in streams)} / {len(streams)}"],
                ["streams cut, error chunk sent", sum(o.stream_error for o in streams)],
            ],
        )
    )
    print()
    print(table("The books", ["check", "value"], [[k.replace("_", " "), v] for k, v in books.items()]))
    print()
    print(
        table(
            "Gateway memory (RSS, MiB)",
            ["after warm-up", "end", "peak", "growth"],
            [[after_warmup, rss_end, peak, f"{(rss_end - after_warmup) / after_warmup:+.1%}"]],
        )
    )
    if run.client_errors:
        print("client-side errors:", dict(run.client_errors))


if __name__ == "__main__":
    sys.exit(main())
