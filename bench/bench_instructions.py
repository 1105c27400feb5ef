"""CPU instructions per request, counted by callgrind: the figure that holds still when the machine does not.

Run: `make bench BENCH=instructions` (or `.venv/bin/python -m bench.bench_instructions [--requests N]
[--against DIR] [--no-litellm] [--concurrency C]`). Wall-clock CPU per request moves 20% between two runs of
the same code on these shared VMs; instructions executed move well under 1%, so a hot-path change that saves
2% shows up here when it cannot in bench_litellm. Each server runs under `valgrind --tool=callgrind` with
instrumentation off while it starts and warms up (30 requests), then counts N JSON requests and N/2 streamed
ones (max_tokens 64: the fake upstream's answer in 16 SSE events), one at a time (`--concurrency C`: C in
flight at once, as under load), each with a new prompt (the cache misses; budgets, rate limits and the log
all on), as deployed (bench.common.PRODUCTION). `--against DIR` counts another checkout of the gateway beside
this one (e.g. `git worktree add /tmp/before HEAD~3`), in the same run, with the same deploy venv. LiteLLM
proxy is counted the same way unless --no-litellm.

Instructions are not time (a cache miss costs more than an add), but for the same interpreter and libraries
they track CPU time closely; the ratio to LiteLLM here is its CPU-per-request ratio without the noise. What
they understate is memory traffic: the garbage collector's walks of the young objects of 64 requests in flight
(config.asgi.settle_heap) were 1% of the instructions and 3.6% of the time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from bench.bench_gateway import MODEL
from bench.bench_litellm import MASTER_KEY, litellm_proxy
from bench.common import fake_upstream, gateway, prepare_database, table

WARM_UP = 30
MAX_TOKENS = 64  # the fake upstream answers in 16 SSE events (role, 13 pieces of text, finish, usage)


def callgrind(out: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}/cg.%p"]


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True)


def _dumped(out: Path, pid: int, number: int) -> int:
    """The instructions of dump `number` of process `pid` (each dump holds what ran since the one before)."""
    for line in Path(f"{out}/cg.{pid}.{number}").read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in callgrind dump {number} of {pid}")


def _body(stream: bool) -> dict[str, object]:
    return {
        "model": MODEL,
        "max_tokens": MAX_TOKENS,
        "stream": stream,
        "messages": [{"role": "user", "content": f"instructions {uuid.uuid4().hex}"}],
    }


async def _count(url: str, pid: int, headers: dict[str, str], requests: int, concurrency: int) -> int:
    """Warms the server up, then counts `requests` JSON requests (dump 1) and half as many streams (dump 2),
    `concurrency` in flight at once (as wrk keeps its connections busy), all on one client: the counted
    requests open no connection (the warm-up opened every one). Returns the number of streams counted."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, headers=headers, limits=limits) as client:

        async def batch(total: int, stream: bool) -> None:
            left = total

            async def worker() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    response = await client.post(url + "/v1/chat/completions", json=_body(stream))
                    if response.status_code != 200:
                        raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")

            await asyncio.gather(*(worker() for _ in range(concurrency)))

        await batch(max(WARM_UP, concurrency), False)
        await batch(max(WARM_UP // 3, concurrency), True)
        _control("-i", "on", str(pid))
        await batch(requests, False)
        _control("-d", str(pid))
        streams = max(requests // 2, 1)
        await batch(streams, True)
        _control("-d", str(pid))
        _control("-i", "off", str(pid))
    return streams


def count(
    url: str, pid: int, headers: dict[str, str], out: Path, requests: int, concurrency: int = 1
) -> tuple[float, float]:
    """Millions of instructions per JSON request and per streamed one."""
    streams = asyncio.run(_count(url, pid, headers, requests, concurrency))
    return _dumped(out, pid, 1) / requests / 1e6, _dumped(out, pid, 2) / streams / 1e6


def _run(server: Callable[[list[str]], contextlib.AbstractContextManager[tuple[str, int]]],
         headers: dict[str, str], requests: int, concurrency: int) -> tuple[float, float]:  # fmt: skip
    with tempfile.TemporaryDirectory() as folder, server(callgrind(Path(folder))) as (url, pid):
        return count(url, pid, headers, Path(folder), requests, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200, help="JSON requests counted (streams: half)")
    parser.add_argument(
        "--against", type=Path, help="another checkout of the gateway, counted beside this one"
    )
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="requests in flight at once (default: one at a time)"
    )
    args = parser.parse_args()
    key = prepare_database()
    ours = {"Authorization": f"Bearer {key}"}
    results: list[tuple[str, float, float]] = []
    with fake_upstream(cpu=0) as upstream:

        def router(
            root: Path | None,
        ) -> Callable[[list[str]], contextlib.AbstractContextManager[tuple[str, int]]]:
            def start(prefix: list[str]) -> contextlib.AbstractContextManager[tuple[str, int]]:
                extra = {"root": root} if root is not None else {}
                return gateway(upstream.url, cpu=1, prefix=prefix, **extra)  # type: ignore[arg-type]

            return start

        if args.against is not None:
            results.append((f"AI Model Router ({args.against})", *_run(router(args.against.resolve()), ours,
                                                                       args.requests, args.concurrency)))  # fmt: skip
        results.append(
            ("AI Model Router (this checkout)", *_run(router(None), ours, args.requests, args.concurrency))
        )
        if not args.no_litellm:
            proxy = _litellm(upstream.url)
            results.append(
                (
                    "LiteLLM proxy",
                    *_run(proxy, {"Authorization": f"Bearer {MASTER_KEY}"}, args.requests, args.concurrency),
                )
            )
    mine = results[-2] if not args.no_litellm else results[-1]
    rows = [
        [name, json_m, stream_m, json_m / mine[1], stream_m / mine[2]] for name, json_m, stream_m in results
    ]
    print(
        table(
            f"Instructions per request, millions (callgrind; {args.requests} JSON, {max(args.requests // 2, 1)} "
            f"streamed, 16 SSE events each, {args.concurrency} at a time; ratio = row / this checkout)",
            ["server", "JSON", "stream", "JSON ratio", "stream ratio"],
            rows,
        )
    )


def _litellm(upstream_url: str) -> Callable[[list[str]], contextlib.AbstractContextManager[tuple[str, int]]]:
    @contextlib.contextmanager
    def start(prefix: list[str]) -> Iterator[tuple[str, int]]:
        with litellm_proxy(upstream_url, cpu=1, prefix=prefix) as served:
            yield served

    return start


if __name__ == "__main__":
    main()
