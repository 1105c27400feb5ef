"""Two commits of the gateway side by side: added latency at concurrency 1, in one run, requests interleaved.

Run: `.venv/bin/python -m bench.bench_ab BEFORE_DIR AFTER_DIR [--requests N] [--prompt-kib K]`, each DIR a
checkout (e.g. a `git worktree add /tmp/before <rev>`). Both gateways run at once on the same core with their own database; the
driver sends one request to the fake upstream directly, then one through each gateway, in turn, so whatever
else the machine does at a moment weighs on all three alike. Added latency = through a gateway - direct. Every
feature is on, as in the other benches (bench.common.EVERY_FEATURE: budget windows with limits, rate limits).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.common import (
    EVERY_FEATURE,
    cpu_seconds,
    fake_upstream,
    free_port,
    hwm_mib,
    median,
    percentile,
    pin,
    table,
    wait_http,
)

PYTHON = sys.executable
_counter = itertools.count()


def _env(database: str, upstream: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "REDIS_URL": "redis://127.0.0.1:6379/12",
        "LOG_LEVEL": "WARNING",
        "ROUTER_ACCESS_LOG": "false",
        "OPENAI_BASE_URL": upstream + "/v1",
        "ANTHROPIC_BASE_URL": upstream,
        "GEMINI_BASE_URL": upstream,
        "DEEPSEEK_BASE_URL": upstream,
    }


def _prepare(checkout: Path, env: dict[str, str]) -> str:
    database = env["DATABASE_URL"].rsplit("/", 1)[1]
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {database}"],
                   capture_output=True, check=False)  # fmt: skip
    for args in (["migrate", "--noinput"], ["seed_catalog"]):
        subprocess.run([PYTHON, "manage.py", *args], cwd=checkout, env=env, capture_output=True, check=True)
    made = subprocess.run(
        [PYTHON, "manage.py", "create_api_key", "bench", "--name", "ab"],
        cwd=checkout, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    subprocess.run([PYTHON, "manage.py", "shell", "-c", EVERY_FEATURE], cwd=checkout, env=env, check=True)
    return made.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def _gateway(checkout: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = free_port()
    command = [*pin(1), PYTHON, "-m", "uvicorn", "config.asgi:application", "--port", str(port), "--loop", "uvloop",
               "--http", "httptools", "--no-access-log", "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(command, cwd=checkout, env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(10)


# --prompt-kib: a long shared context before each request's own line (as a coding agent sends).
_context = ""


def _timed(client: httpx.Client, url: str, key: str | None) -> float:
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "user", "content": f"{_context}ab prompt {next(_counter)} {time.monotonic_ns()}"}
        ],
        "max_tokens": 64,
    }
    headers = {"Authorization": f"Bearer {key or 'sk-fake'}"}
    started = time.perf_counter()
    response = client.post(url + "/v1/chat/completions", json=body, headers=headers)
    took = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--prompt-kib", type=int, default=0, help="a long context before each prompt")
    args = parser.parse_args()
    global _context
    words = (Path(__file__).parents[1] / "README.md").read_text().split()
    while len(_context) < args.prompt_kib * 1024:
        _context += " ".join(words) + "\n"
    _context = _context[: args.prompt_kib * 1024]
    with fake_upstream(cpu=0) as upstream:
        envs = [_env("router_ab_a", upstream.url), _env("router_ab_b", upstream.url)]
        keys = [_prepare(args.before, envs[0]), _prepare(args.after, envs[1])]
        with (
            _gateway(args.before, envs[0]) as (before, before_pid),
            _gateway(args.after, envs[1]) as (after, after_pid),
        ):
            urls = [upstream.url, before, after]
            samples: list[list[float]] = [[], [], []]
            with httpx.Client(timeout=30) as client:
                for _ in range(50):  # warm-up: pools, catalogs, code paths
                    for url, key in zip(urls, [None, *keys], strict=True):
                        _timed(client, url, key)
                cpu_before = [cpu_seconds(before_pid), cpu_seconds(after_pid)]
                for _ in range(args.requests):
                    for index, (url, key) in enumerate(zip(urls, [None, *keys], strict=True)):
                        samples[index].append(_timed(client, url, key))
                cpu = [
                    (cpu_seconds(pid) - start) * 1000 / args.requests
                    for pid, start in zip((before_pid, after_pid), cpu_before, strict=True)
                ]
                peak = [hwm_mib(before_pid), hwm_mib(after_pid)]
    direct = median(samples[0])
    rows = [
        ["direct (fake upstream)", direct, percentile(samples[0], 99), 0.0, "-", "-"],
        [
            f"before ({args.before.name})",
            median(samples[1]),
            percentile(samples[1], 99),
            median(samples[1]) - direct,
            cpu[0],
            peak[0],
        ],
        [
            f"after ({args.after.name})",
            median(samples[2]),
            percentile(samples[2], 99),
            median(samples[2]) - direct,
            cpu[1],
            peak[1],
        ],
    ]
    headers = ["target", "p50", "p99", "added p50", "gateway CPU ms/request", "peak RSS MiB"]
    prompt = f", prompts of {args.prompt_kib} KiB" if args.prompt_kib else ""
    print(table(f"Concurrency 1, {args.requests} requests each{prompt}, interleaved (ms)", headers, rows))
    print(
        f"\nafter - before: added p50 {median(samples[2]) - median(samples[1]):+.2f} ms, CPU {cpu[1] - cpu[0]:+.2f} ms/request,"
        f" peak RSS {peak[1] - peak[0]:+.1f} MiB"
    )


if __name__ == "__main__":
    main()
