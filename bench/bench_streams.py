"""Streams through one gateway process: the relay's chunk throughput per core, and 1,000 slow streams held.

Run: `.venv/bin/python -m bench.bench_streams [--streams 1000] [--chunk-ms 500] [--chunks 10]
[--relay-streams 150] [--relay-chunks 200]`, or `make bench BENCH=streams`. One run prints two tables:

1. Relay throughput: --relay-streams concurrent streams of --relay-chunks content chunks each, the upstream
   sending them back to back (chunk_delay 0), on a warm gateway. A chunk is an SSE `data:` event the client
   receives (a stream's role chunk, content chunks, finish chunk and [DONE]); "per core" is chunks per CPU-second
   the gateway process used over the run (/proc/PID/stat before, and after a one-second settle so the work done
   once a stream has ended counts too). The target is 5,000 chunks per CPU-second.
2. Held streams: --streams concurrent streams, the upstream sending a content chunk every --chunk-ms. Content
   chunk k of a stream lags by (its arrival - the arrival of the stream's first content chunk) - k x interval;
   a stream falls behind when its worst lag exceeds one interval. The run holds when every stream ends with
   [DONE], each with all its chunks, and none falls behind.

The gateway runs as deployed (uvicorn, uvloop, httptools, production settings) pinned to core 1; the fake
upstream and this load driver share core 0, so the gateway has a core to itself (what other tenants of the
machine leave of it). Lag is measured at the client, so the upstream's and the driver's own delays count
against the gateway: the figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import uvloop

from bench.common import (
    CPUS,
    cpu_seconds,
    fake_upstream,
    gateway,
    hwm_mib,
    median,
    percentile,
    prepare_database,
    table,
)
from providers.fake_upstream import FakeUpstreamProcess

MODEL = "gpt-4o-mini"
TIMEOUT_S = 300
# Longer than the gateway's 30 s keepalive_expiry for upstream connections, as a provider's front end would keep
# them; at uvicorn's 5 s default the gateway reuses connections the upstream is closing ("Server disconnected",
# retried, three in a row a 502, and five failures open the provider's cooldown for everyone).
UPSTREAM_KEEP_ALIVE_S = 75


def waited_s(pid: int) -> float:
    """Seconds the process's main thread was runnable but waiting for its core (taken by other processes)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


@dataclass
class Stream:
    started: float
    done: bool = False
    events: int = 0  # SSE data events received, [DONE] included
    content: list[float] = field(default_factory=list)  # arrival of each content chunk (perf_counter, s)
    error: str = ""  # why it failed: the HTTP status line, an error event or an exception


async def one_stream(address: tuple[str, int], key: str, index: int, timed: bool) -> Stream:
    """One streamed completion over a connection of its own, read with a bare HTTP/1.1 client (httpx spent
    more CPU than the gateway at 1,000 streams, on the core it shares with the upstream); with `timed`, the
    arrival time of each content chunk is kept."""
    body = json.dumps(
        {
            "model": MODEL,
            "stream": True,
            "messages": [{"role": "user", "content": f"stream {index} {time.monotonic_ns()}"}],
        }
    ).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    result = Stream(started=time.perf_counter())
    writer = None
    try:
        async with asyncio.timeout(TIMEOUT_S):
            reader, writer = await asyncio.open_connection(*address)
            writer.write(head.encode() + body)
            status = await reader.readline()
            if status.split()[1:2] != [b"200"]:
                result.error = status.decode(errors="replace").strip() or "no response"
                return result
            while await reader.readline() not in (b"\r\n", b""):
                pass  # uvicorn frames a stream with Transfer-Encoding: chunked
            pending = b""
            while size := int((await reader.readline()).split(b";")[0], 16):
                pending += (await reader.readexactly(size + 2))[:-2]
                *events, pending = pending.split(b"\n\n")
                now = time.perf_counter()
                for event in events:
                    if not event.startswith(b"data:"):
                        continue
                    result.events += 1
                    if event == b"data: [DONE]":
                        result.done = not result.error
                    elif event.startswith(b'data: {"error"'):
                        result.error = event[6:200].decode(errors="replace")
                    elif timed and _has_content(event):
                        result.content.append(now)
    except (OSError, ValueError, asyncio.IncompleteReadError) as failed:  # a timeout is an OSError too
        result.done, result.error = False, repr(failed)
    finally:
        if writer is not None:
            writer.close()
    return result


def _has_content(event: bytes) -> bool:
    choices = json.loads(event[5:]).get("choices") or [{}]
    return bool((choices[0].get("delta") or {}).get("content"))


async def gather(address: tuple[str, int], key: str, streams: int, timed: bool) -> list[Stream]:
    return await asyncio.gather(*(one_stream(address, key, i, timed) for i in range(streams)))


def run(address: tuple[str, int], key: str, streams: int, *, timed: bool = False) -> list[Stream]:
    return uvloop.run(gather(address, key, streams, timed))


def relay(
    address: tuple[str, int], pid: int, key: str, upstream: FakeUpstreamProcess, args: argparse.Namespace
) -> list[list[object]]:
    upstream.clear()
    upstream.control(model=MODEL, chunks=args.relay_chunks)
    run(address, key, 20)  # warm-up: these many chunks, with no delay between them
    cpu_before, wait_before, started = cpu_seconds(pid), waited_s(pid), time.perf_counter()
    results = run(address, key, args.relay_streams)
    wall = time.perf_counter() - started
    time.sleep(1)
    cpu, waited = cpu_seconds(pid) - cpu_before, waited_s(pid) - wait_before
    chunks = sum(r.events for r in results)
    done = sum(r.done for r in results)
    return [
        ["concurrent streams", args.relay_streams],
        ["content chunks a stream (upstream chunk_delay 0)", args.relay_chunks],
        ["completed with [DONE] / failed", f"{done} / {args.relay_streams - done}"],
        ["failures by cause", _causes(results)],
        ["chunks relayed (SSE data events received)", chunks],
        ["wall time s", f"{wall:.2f}"],
        ["gateway CPU s", f"{cpu:.2f}"],
        ["chunks per gateway CPU-second (per core)", f"{chunks / cpu:,.0f}" if cpu else "n/a"],
        ["chunks per second of wall time", f"{chunks / wall:,.0f}"],
        ["gateway CPU busy (% of its core)", f"{100 * cpu / (wall + 1):.0f}"],
        ["gateway waited for its core s (other processes)", f"{waited:.2f}"],
    ]


def held(
    address: tuple[str, int], pid: int, key: str, upstream: FakeUpstreamProcess, args: argparse.Namespace
) -> list[list[object]]:
    upstream.clear()
    upstream.control(model=MODEL, chunks=args.chunks)
    run(address, key, 10)  # warm-up of a fresh gateway
    upstream.clear()
    upstream.control(model=MODEL, chunks=args.chunks, chunk_delay_ms=args.chunk_ms)
    cpu_before, wait_before, started = cpu_seconds(pid), waited_s(pid), time.perf_counter()
    results = run(address, key, args.streams, timed=True)
    wall = time.perf_counter() - started
    cpu, waited = cpu_seconds(pid) - cpu_before, waited_s(pid) - wait_before
    rss = hwm_mib(pid)
    interval = args.chunk_ms / 1000
    whole = [r for r in results if r.done and len(r.content) == args.chunks]
    worst = [max((at - r.content[0]) - k * interval for k, at in enumerate(r.content)) * 1000 for r in whole]
    first = [(r.content[0] - r.started) * 1000 for r in results if r.content]
    behind = sum(1 for w in worst if w > args.chunk_ms)
    done = sum(r.done for r in results)
    holds = len(whole) == args.streams and behind == 0
    return [
        ["streams opened", args.streams],
        ["content chunks a stream / upstream interval ms", f"{args.chunks} / {args.chunk_ms}"],
        ["completed with [DONE]", done],
        ["failed (no [DONE], or chunks missing)", args.streams - len(whole)],
        ["failures by cause", _causes(results)],
        ["worst lag a stream ms (p50 / p99 / max)", _spread(worst)],
        [f"streams whose worst lag > {args.chunk_ms} ms", behind],
        ["first chunk ms (p50 / p99)", f"{median(first):.0f} / {percentile(first, 99):.0f}"],
        ["ideal / actual wall time s", f"{(args.chunks - 1) * interval:.1f} / {wall:.1f}"],
        ["gateway CPU s (ms a stream)", f"{cpu:.2f} ({1000 * cpu / args.streams:.1f})"],
        ["gateway waited for its core s (other processes)", f"{waited:.2f}"],
        ["gateway peak RSS MiB (VmHWM)", f"{rss:.1f}"],
        ["holds", "yes" if holds else "NO"],
    ]


def _causes(results: list[Stream]) -> str:
    causes = Counter(r.error or "ended early" for r in results if not r.done)
    return "; ".join(f"{n} x {cause}" for cause, n in causes.most_common(3)) or "-"


def _spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{median(values):.0f} / {percentile(values, 99):.0f} / {max(values):.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--chunk-ms", type=int, default=500)
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--relay-streams", type=int, default=150)
    parser.add_argument("--relay-chunks", type=int, default=200)
    args = parser.parse_args()
    # One socket a stream on this side (and the upstream's and the gateway's, which inherit the limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * max(args.streams, args.relay_streams) + 512
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard)
        )
    if CPUS > 1:
        os.sched_setaffinity(0, {0})  # the driver shares core 0 with the fake upstream
    key = prepare_database()
    with (
        fake_upstream(cpu=0, keep_alive_s=UPSTREAM_KEEP_ALIVE_S) as upstream,
        gateway(upstream.url, cpu=1, DB_ASYNC_POOL_MAX="40") as (url, pid),
    ):
        parts = urllib.parse.urlsplit(url)
        address = (parts.hostname or "127.0.0.1", parts.port or 80)
        held_rows = held(address, pid, key, upstream, args)  # first, so VmHWM is this run's peak
        relay_rows = relay(address, pid, key, upstream, args)
    print(table("Relay throughput, one gateway process", ["figure", "value"], relay_rows))
    print()
    print(
        table(
            f"{args.streams} concurrent streams at {args.chunk_ms} ms a chunk",
            ["figure", "value"],
            held_rows,
        )
    )


if __name__ == "__main__":
    main()
