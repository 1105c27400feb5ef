"""1,000 concurrent streams through one gateway process, the upstream sending a chunk every 50 ms.

Run: `.venv/bin/python -m bench.bench_streams [--streams 1000] [--chunks 20]`. A stall is a gap between two
chunks of one stream of more than a second (the upstream's own gap is 50 ms). The load driver runs on the
same two cores, so the figures are a floor for the gateway, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from bench.common import fake_upstream, gateway, hwm_mib, median, percentile, prepare_database, table

MODEL = "gpt-4o-mini"


async def one_stream(
    client: httpx.AsyncClient, url: str, key: str, index: int
) -> tuple[bool, float, float, float]:
    """(completed, worst gap between chunks after the first, time to first chunk, whole duration) in ms."""
    body = {
        "model": MODEL,
        "stream": True,
        "messages": [{"role": "user", "content": f"stream {index} {time.monotonic_ns()}"}],
    }
    started = time.perf_counter()
    last: float | None = None
    first_at = started
    worst_gap = 0.0
    done = False
    try:
        async with client.stream(
            "POST", url, json=body, headers={"Authorization": f"Bearer {key}"}
        ) as response:
            async for line in response.aiter_lines():
                if not line:
                    continue
                now = time.perf_counter()
                if last is None:
                    first_at = now
                else:
                    worst_gap = max(worst_gap, now - last)
                last = now
                if line == "data: [DONE]":
                    done = response.status_code == 200
    except httpx.HTTPError:
        done = False
    return done, worst_gap * 1000, (first_at - started) * 1000, (time.perf_counter() - started) * 1000


async def run(url: str, key: str, streams: int) -> list[tuple[bool, float, float, float]]:
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        return await asyncio.gather(*(one_stream(client, url, key, i) for i in range(streams)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=20)
    args = parser.parse_args()
    key = prepare_database()
    with fake_upstream(cpu=0) as upstream:
        upstream.control(model=MODEL, chunks=args.chunks, chunk_delay_ms=50)
        with gateway(upstream.url, cpu=1, DB_ASYNC_POOL_MAX="40") as (url, pid):
            started = time.perf_counter()
            results = asyncio.run(run(url + "/v1/chat/completions", key, args.streams))
            elapsed = time.perf_counter() - started
            rss = hwm_mib(pid)
    ok = [r for r in results if r[0]]
    gaps = [r[1] for r in results]
    first_chunk = [r[2] for r in results]
    durations = [r[3] for r in results]
    rows = [
        ["streams opened", args.streams],
        ["completed with [DONE]", len(ok)],
        ["failed", args.streams - len(ok)],
        ["stalls (gap > 1 s)", sum(1 for g in gaps if g > 1000)],
        ["first chunk ms (p50 / p99)", f"{median(first_chunk):.0f} / {percentile(first_chunk, 99):.0f}"],
        [
            "worst gap after the first chunk ms (p50 / p99 / max)",
            f"{median(gaps):.0f} / {percentile(gaps, 99):.0f} / {max(gaps):.0f}",
        ],
        ["stream duration ms (p50 / p99)", f"{median(durations):.0f} / {percentile(durations, 99):.0f}"],
        ["ideal stream duration ms", args.chunks * 50],
        ["wall time s", f"{elapsed:.1f}"],
        ["gateway peak RSS MiB", f"{rss:.1f}"],
    ]
    print(table(f"{args.streams} concurrent streams through one gateway process", ["figure", "value"], rows))


if __name__ == "__main__":
    main()
