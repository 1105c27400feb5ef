"""Added latency and throughput of the gateway next to calling the fake upstream directly.

Run: `.venv/bin/python bench/bench_gateway.py [--quick]`. The gateway is pinned to CPU 1, the fake upstream and
the load driver to CPU 0. Every request carries a distinct prompt so the response cache misses: budgets,
logging and the cache lookup are all on, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass

import httpx

from bench.common import (
    CPUS,
    fake_upstream,
    gateway,
    hwm_mib,
    median,
    percentile,
    pin,
    prepare_database,
    services_off_core,
    table,
    vacuum_database,
)

MODEL = "gpt-4o-mini"
_counter = itertools.count()


def _body(stream: bool = False) -> dict[str, object]:
    body: dict[str, object] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"bench prompt {next(_counter)} {time.monotonic_ns()}"}],
        "max_tokens": 64,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]


async def _one(client: httpx.AsyncClient, target: Target, stream: bool) -> float:
    started = time.perf_counter()
    if stream:
        async with client.stream("POST", target.url, json=_body(True), headers=target.headers) as response:
            async for _ in response.aiter_raw():
                pass
            response.raise_for_status()
    else:
        response = await client.post(target.url, json=_body(), headers=target.headers)
        response.raise_for_status()
    return (time.perf_counter() - started) * 1000


async def latencies(target: Target, *, concurrency: int, total: int, stream: bool) -> list[float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    results: list[float] = []
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        for _ in range(min(20, total)):  # warm-up: connections, catalog, key cache
            await _one(client, target, stream)
        queue = iter(range(total))

        async def worker() -> None:
            for _ in queue:
                results.append(await _one(client, target, stream))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%s
counter = 0
request = function()
  counter = counter + 1
  local body = '{"model": "%s", "max_tokens": 64, %s "messages": [{"role": "user", "content": "wrk %s ' .. counter .. '"}]}'
  return wrk.format(nil, nil, nil, body)
end
"""


def wrk_script(headers: dict[str, str], *, model: str = MODEL, stream: bool = False) -> str:
    """A wrk script posting a new prompt on every request: a counter after a token new to each run (wrk's
    Lua random numbers repeat from run to run, so prompts did too, and a second run hit the cache)."""
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    return WRK_SCRIPT % (lines, model, '"stream": true,' if stream else "", uuid.uuid4().hex)


def wrk_rps(target: Target, *, seconds: int, connections: int, stream: bool) -> float:
    return wrk_run(target, seconds=seconds, connections=connections, stream=stream)[0]


def wrk_run(target: Target, *, seconds: int, connections: int, stream: bool) -> tuple[float, int]:
    """wrk for `seconds` at `connections`: (requests/s, requests completed). The gateway under load has its
    core (CPU 1) to itself, its database freshly vacuumed (bench.common: services_off_core, vacuum_database)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(target.headers, stream=stream))
    vacuum_database()
    try:
        with services_off_core(1):
            result = subprocess.run(
                [*pin(0), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name, target.url],
                capture_output=True,
                text=True,
                check=True,
            )
    finally:
        os.unlink(script.name)
    done = re.search(r"(\d+) requests in", result.stdout)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if not done or not rate:
        raise RuntimeError(result.stdout + result.stderr)
    if errors:
        raise RuntimeError(f"{target.name}: {errors.group(1)} requests failed under wrk:\n{result.stdout}")
    return float(rate.group(1)), int(done.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    args = parser.parse_args()
    n1, n32, seconds = (150, 640, 4) if args.quick else (500, 3200, 10)

    key = prepare_database()
    with fake_upstream(cpu=0) as upstream:
        direct = Target("direct", upstream.url + "/v1/chat/completions", {})
        with gateway(upstream.url, cpu=1) as (url, pid):
            via = Target("gateway", url + "/v1/chat/completions", {"Authorization": f"Bearer {key}"})
            rows = []
            for upstream_ms in (0, 50):
                upstream.clear()
                if upstream_ms:
                    upstream.control(model=MODEL, delay_ms=upstream_ms)
                for stream in (False, True):
                    if stream and upstream_ms:
                        upstream.control(model=MODEL, chunk_delay_ms=0)
                    for concurrency, total in ((1, n1), (32, n32)):
                        base = asyncio.run(
                            latencies(direct, concurrency=concurrency, total=total, stream=stream)
                        )
                        ours = asyncio.run(
                            latencies(via, concurrency=concurrency, total=total, stream=stream)
                        )
                        rows.append(
                            [
                                "stream" if stream else "json",
                                upstream_ms,
                                concurrency,
                                median(base),
                                median(ours),
                                median(ours) - median(base),
                                percentile(ours, 99) - percentile(base, 99),
                            ]
                        )
            print(
                table(
                    "Added latency (ms): gateway minus direct, same driver, same run",
                    ["kind", "upstream ms", "conc", "direct p50", "gateway p50", "added p50", "added p99"],
                    rows,
                )
            )
            print()
            upstream.clear()
            throughput = []
            for stream in (False, True):
                base_rps = wrk_rps(direct, seconds=seconds, connections=64, stream=stream)
                ours_rps = wrk_rps(via, seconds=seconds, connections=64, stream=stream)
                throughput.append(["stream" if stream else "json", base_rps, ours_rps, ours_rps / base_rps])
            print(
                table(
                    "Throughput at concurrency 64 (requests/s; gateway on one core)",
                    ["kind", "direct", "gateway", "ratio"],
                    throughput,
                )
            )
            print()
            print(f"Gateway peak RSS: {hwm_mib(pid):.1f} MiB   (cores on this machine: {CPUS})")


if __name__ == "__main__":
    main()
