"""Batch fan-out: 100 items against the fake upstream at 200 ms, next to the time of the slowest concurrency wave.

Run: `.venv/bin/python -m bench.bench_batch [--items 100] [--delay-ms 200] [--concurrency 8 16] [--runs 3]`.
For each concurrency C it starts the gateway and a prefork Celery worker of C processes with the per-provider
bound (ROUTER_BATCH_CONCURRENCY) also at C, so C items are in flight at a time. The floor is then
ceil(items / C) waves of one upstream delay each; the serial time (items x delay) is what a loop would take.
Every item has its own prompt, so the response cache never answers; budgets and logging are on.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.common import PYTHON, ROOT, base_env, fake_upstream, gateway, median, prepare_database, table

MODEL = "gpt-4o-mini"
QUEUE = f"bench-batch-{os.getpid()}"  # a queue of its own: other workers on this Redis never take its items


def _fanout_env(concurrency: int) -> dict[str, str]:
    return {"CELERY_TASK_DEFAULT_QUEUE": QUEUE, "ROUTER_BATCH_CONCURRENCY": str(concurrency)}


@contextlib.contextmanager
def worker(upstream_url: str, concurrency: int) -> Iterator[None]:
    """A prefork worker of `concurrency` processes on this run's queue (its warnings go to stderr)."""
    command = [
        str(Path(PYTHON).with_name("celery")), "-A", "config", "worker", "--pool=prefork",
        f"--concurrency={concurrency}", "-Q", QUEUE, "--without-gossip", "--without-mingle",
        "--without-heartbeat", "--loglevel=WARNING",
    ]  # fmt: skip
    env = base_env(
        OPENAI_BASE_URL=upstream_url + "/v1",
        ANTHROPIC_BASE_URL=upstream_url,
        GEMINI_BASE_URL=upstream_url,
        DEEPSEEK_BASE_URL=upstream_url,
        **_fanout_env(concurrency),
    )
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.terminate()
        process.wait(30)


def run_batch(client: httpx.Client, items: int, label: str, max_tokens: int = 16) -> tuple[float, dict]:
    body = {
        "model": MODEL,
        "max_tokens": max_tokens,
        "requests": [
            {"messages": [{"role": "user", "content": f"{label} item {i} {time.time_ns()}"}]}
            for i in range(items)
        ],
    }
    started = time.perf_counter()
    response = client.post("/v1/chat/batch", json=body)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    result = response.json()
    if result.get("status") != "completed" or result["successful"] != items:
        raise RuntimeError(
            f"batch did not complete cleanly: { {k: result.get(k) for k in ('status', 'successful', 'failed')} }"
        )
    return elapsed, result


def measure(key: str, *, items: int, delay_ms: int, concurrency: int, runs: int) -> list[object]:
    with (
        fake_upstream(cpu=0) as upstream,
        gateway(
            upstream.url, cpu=1, CELERY_TASK_DEFAULT_QUEUE=QUEUE, ROUTER_BATCH_CONCURRENCY=str(concurrency)
        ) as (url, _pid),
        worker(upstream.url, concurrency),
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=600) as client,
    ):
        # Warm-up: waits for the worker to be up and loads each pool process (catalog, tokenizer, clients).
        deadline = time.monotonic() + 60
        while True:
            try:
                run_batch(client, concurrency * 2, "warm-up")
                break
            except (httpx.HTTPError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
        upstream.control(model=MODEL, delay_ms=delay_ms)
        totals = []
        for run in range(runs):
            elapsed, result = run_batch(client, items, f"run {run}")
            totals.append(elapsed)
            print(
                f"  C={concurrency} run {run + 1}: {elapsed:.2f} s ({result['batch_id']}: created to completed "
                f"{result['total_latency_ms']} ms)",
                flush=True,
            )
    waves = math.ceil(items / concurrency)
    floor = waves * delay_ms / 1000
    total = median(totals)
    return [concurrency, waves, floor, total, total / floor, items * delay_ms / 1000]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--delay-ms", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    key = prepare_database()
    rows = [
        measure(key, items=args.items, delay_ms=args.delay_ms, concurrency=c, runs=args.runs)
        for c in args.concurrency
    ]
    print()
    print(
        table(
            f"Batch of {args.items} items, upstream at {args.delay_ms} ms, wait: true (median of {args.runs} runs)",
            ["in flight (C)", "waves", "slowest-wave floor s", "batch s", "ratio", "serial s"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
