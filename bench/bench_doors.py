"""The front doors side by side: throughput at concurrency 64 and added latency, native and translated.

Run: `.venv/bin/python -m bench.bench_doors [--quick]`. One fake upstream (CPU 0) and one gateway (CPU 1),
started as in bench_gateway; the load driver is pinned to CPU 0 as wrk is there; each loaded run starts from
freshly vacuumed tables (bench.common.vacuum_database). PostgreSQL and Redis stay where the scheduler puts them:
moved beside this driver (as bench_gateway moves them beside wrk), CPU 0 sets the pace. It is a Python (httpx)
driver, because every answer is checked: status 200, a JSON body of the door's own shape, and for a stream
its terminal event (`data: [DONE]`, `message_stop`, `response.completed`). Every request carries a new
prompt, so the response cache misses. Embeddings rows send EMBED_INPUTS new texts a request, base64 (the
openai SDK's default), to OpenAI's /v1/embeddings (native) and to Gemini's batchEmbedContents (translated).

Added latency compares each door with calling the fake upstream directly in the vendor format the gateway
itself used for that row (read from the fake upstream's recordings), so a translated row is charged for the
translation and nothing else. Requests/s is the answers completed in a fixed window at concurrency 64; "vs
chat" divides it by chat completions' of the same kind (JSON or stream). "cpu ms/req" is the gateway process's
own CPU per answer in that run, steadier than requests/s when others share the machine. Exits 1 when any
request failed or a door did not reach the upstream it should have.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import orjson
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
    vacuum_database,
)

if TYPE_CHECKING:
    from providers.fake_upstream import FakeUpstreamProcess

CONCURRENCY = 64
WARM_UP = 20
MAX_TOKENS = 64
ANTHROPIC_VERSION = "2023-06-01"
EMBED_INPUTS = 4  # texts per embeddings request
ROUNDS = 3  # loaded runs per door, interleaved with the other doors' (their windows summed)
GEMINI_EMBEDDING = "gemini-embedding-001"
_counter = itertools.count()
_TLS = ssl.create_default_context()  # unused on http://, but each client would otherwise build its own


def _prompt() -> str:
    return f"doors prompt {next(_counter)} {time.monotonic_ns()}"


def _chat_body(model: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": _prompt()}],
        "max_tokens": MAX_TOKENS,
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


def _messages_body(model: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": _prompt()}],
    }
    if stream:
        body["stream"] = True
    return body


def _responses_body(model: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": _prompt(), "max_output_tokens": MAX_TOKENS}
    if stream:
        body["stream"] = True
    return body


def _embeddings_body(model: str, stream: bool) -> dict[str, Any]:
    return {"model": model, "input": [_prompt() for _ in range(EMBED_INPUTS)], "encoding_format": "base64"}


def _gemini_embed_body(model: str, stream: bool) -> dict[str, Any]:
    name = f"models/{GEMINI_EMBEDDING}"
    return {
        "requests": [
            {"model": name, "content": {"parts": [{"text": _prompt()}]}} for _ in range(EMBED_INPUTS)
        ]
    }


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _anthropic_key(key: str) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}


def _google_key(key: str) -> dict[str, str]:
    return {"x-goog-api-key": key}


@dataclass(frozen=True)
class Dialect:
    """One wire dialect, spoken both by a gateway door and by the fake upstream's route of the same path."""

    path: str
    body: Callable[[str, bool], dict[str, Any]]
    auth: Callable[[str], dict[str, str]]
    answered: Callable[[dict[str, Any]], bool]  # a JSON answer of this dialect, with content
    terminal: bytes  # the stream's last line of its kind (`data:` or `event:`)


DIALECTS = {
    "chat": Dialect(
        "/v1/chat/completions",
        _chat_body,
        _bearer,
        lambda p: p.get("object") == "chat.completion" and bool(p.get("choices")),
        b"data: [DONE]",
    ),
    "messages": Dialect(
        "/v1/messages",
        _messages_body,
        _anthropic_key,
        lambda p: p.get("type") == "message" and bool(p.get("content")),
        b"event: message_stop",
    ),
    "responses": Dialect(
        "/v1/responses",
        _responses_body,
        _bearer,
        lambda p: p.get("object") == "response" and p.get("status") == "completed",
        b"event: response.completed",
    ),
    "embeddings": Dialect(
        "/v1/embeddings",
        _embeddings_body,
        _bearer,
        lambda p: p.get("object") == "list" and len(p.get("data") or []) == EMBED_INPUTS,
        b"",
    ),
    # Only the fake upstream speaks it (no door does): the direct baseline of the translated embeddings row.
    "gemini-embeddings": Dialect(
        f"/v1beta/models/{GEMINI_EMBEDDING}:batchEmbedContents",
        _gemini_embed_body,
        _google_key,
        lambda p: len(p.get("embeddings") or []) == EMBED_INPUTS,
        b"",
    ),
}
# The fake upstream records each vendor request's format; its routes speak the doors' dialects.
UPSTREAM_DIALECT = {
    "openai": "chat",
    "anthropic": "messages",
    "openai-responses": "responses",
    "openai-embeddings": "embeddings",
    "gemini-embeddings": "gemini-embeddings",
}


@dataclass(frozen=True)
class Case:
    door: str
    model: str
    upstream: str  # the vendor format the gateway should call: native when it is the door's own
    stream: bool = False

    @property
    def native(self) -> bool:
        return UPSTREAM_DIALECT[self.upstream] == self.door


CASES = [
    Case("chat", "gpt-4o-mini", "openai"),
    Case("messages", "claude-sonnet-4.5", "anthropic"),
    Case("messages", "gpt-4o-mini", "openai"),
    Case("responses", "gpt-4o-mini", "openai-responses"),
    Case("responses", "claude-sonnet-4.5", "anthropic"),
    Case("embeddings", "text-embedding-3-small", "openai-embeddings"),
    Case("embeddings", GEMINI_EMBEDDING, "gemini-embeddings"),
    Case("chat", "gpt-4o-mini", "openai", stream=True),
    Case("messages", "claude-sonnet-4.5", "anthropic", stream=True),
    Case("responses", "gpt-4o-mini", "openai-responses", stream=True),
]


@dataclass(frozen=True)
class Target:
    url: str
    dialect: Dialect
    model: str
    stream: bool
    headers: dict[str, str]


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None

    def fail(self, detail: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or detail


class BadAnswer(Exception):
    pass


def _masked(headers: dict[str, str]) -> dict[str, str]:
    return {
        k: "Bearer ***" if k == "Authorization" else "***" if k == "x-api-key" else v
        for k, v in headers.items()
    }


def _check(target: Target, status: int, raw: bytes) -> None:
    if status != 200:
        raise BadAnswer(f"status {status}")
    if target.stream:
        kind = target.dialect.terminal.split(b":")[0] + b":"
        lines = [line.strip() for line in raw.splitlines() if line.startswith(kind)]
        if not lines or lines[-1] != target.dialect.terminal:
            raise BadAnswer(f"stream did not end with {target.dialect.terminal.decode()}")
        return
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as invalid:
        raise BadAnswer("body is not JSON") from invalid
    if not isinstance(payload, dict) or not target.dialect.answered(payload):
        raise BadAnswer("JSON body is not a complete answer of the door's dialect")


async def _one(client: httpx.AsyncClient, target: Target, tally: Tally) -> bool:
    body = target.dialect.body(target.model, target.stream)
    started = time.perf_counter()
    status, raw = 0, b""
    try:
        if target.stream:
            async with client.stream("POST", target.url, json=body, headers=target.headers) as response:
                status, raw = response.status_code, b"".join([chunk async for chunk in response.aiter_raw()])
        else:
            response = await client.post(target.url, json=body, headers=target.headers)
            status, raw = response.status_code, response.content
        _check(target, status, raw)
    except (BadAnswer, httpx.HTTPError) as failed:
        cause = failed.__cause__ or failed.__context__
        request = f"POST {target.url} headers={_masked(target.headers)} body={json.dumps(body)}"
        tally.fail(
            f"{failed!r}{f' from {cause!r}' if cause else ''}\n"
            f"    request:  {request}\n    response: {status} {raw[:600]!r}"
        )
        return False
    tally.latencies.append((time.perf_counter() - started) * 1000)
    return True


def _client() -> httpx.AsyncClient:
    # One connection per client and one client per worker: httpcore's pool scans every connection for
    # every request, which at 64 connections costs the driver more than the server (about 20 ms a request).
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.AsyncClient(limits=limits, timeout=60, verify=_TLS)


async def _sequential(target: Target, total: int) -> Tally:
    warm, tally = Tally(), Tally()
    async with _client() as client:
        for _ in range(WARM_UP):  # connection, catalog, key cache
            await _one(client, target, warm)
        for _ in range(total):
            await _one(client, target, tally)
    tally.errors += warm.errors
    tally.first_error = warm.first_error or tally.first_error
    return tally


async def _loaded(target: Target, *, concurrency: int, warm_s: float, seconds: float) -> tuple[Tally, float]:
    """Every worker busy from start to end; only answers completed in the window after warm_s count.

    No barrier between warm-up and measurement, so no connection idles (and none meets a keep-alive expiry).
    """
    tally = Tally()
    counted = 0
    window_start = time.perf_counter() + warm_s
    window_end = window_start + seconds

    async def worker() -> None:
        nonlocal counted
        async with _client() as client:
            while time.perf_counter() < window_end:
                ok = await _one(client, target, tally)
                counted += ok and window_start <= time.perf_counter() <= window_end

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally, counted / seconds


def sequential(target: Target, total: int) -> Tally:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_sequential(target, total))


def loaded(target: Target, *, warm_s: float, seconds: float) -> tuple[Tally, float]:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_loaded(target, concurrency=CONCURRENCY, warm_s=warm_s, seconds=seconds))


@dataclass
class Outcome:
    case: Case
    via: Target
    upstream_path: str
    added_p50: float
    added_p99: float
    errors: int
    direct_errors: int
    problems: list[str]
    # The loaded rounds, summed: answers in the windows and the windows' length; the gateway's CPU over every
    # answer of each run (warm-up included) and the runs' wall time.
    counted: int = 0
    window_s: float = 0.0
    answers: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0

    @property
    def rps(self) -> float:
        return self.counted / self.window_s if self.window_s else 0.0

    @property
    def cpu_ms(self) -> float:
        """The gateway's own CPU per answer under load: steadier than req/s on a shared machine."""
        return self.cpu_s * 1000 / max(1, self.answers)

    @property
    def core_busy(self) -> float:
        """The share of its core the gateway used: below ~90%, something else (the driver's core) set the pace."""
        return self.cpu_s / self.wall_s if self.wall_s else 0.0


def probe(upstream: FakeUpstreamProcess, via: Target) -> tuple[str | None, str | None, str | None, Tally]:
    """One request through the door: the vendor format, path and model the gateway called, and its tally."""
    upstream.clear()
    tally = Tally()

    async def once() -> None:
        async with _client() as client:
            await _one(client, via, tally)

    asyncio.run(once())
    recorded = upstream.requests()
    last = recorded[-1] if recorded else {}
    body = last.get("body") if isinstance(last.get("body"), dict) else {}
    return last.get("format"), last.get("path"), body.get("model"), tally


def run_case(case: Case, upstream: FakeUpstreamProcess, gateway_url: str, key: str, *, n1: int) -> Outcome:
    """The door probed (which upstream it called) and its added latency, sequentially; no load yet."""
    door = DIALECTS[case.door]
    via = Target(gateway_url + door.path, door, case.model, case.stream, door.auth(key))
    problems = []
    wire, path, upstream_model, probed = probe(upstream, via)
    if probed.first_error:
        problems.append(f"probe: {probed.first_error}")
    if wire is not None and wire != case.upstream:
        problems.append(f"the gateway called the upstream as {wire!r} at {path}, expected {case.upstream!r}")
    dialect = DIALECTS[UPSTREAM_DIALECT.get(wire or case.upstream, UPSTREAM_DIALECT[case.upstream])]
    direct = Target(
        upstream.url + dialect.path,
        dialect,
        upstream_model or case.model,
        case.stream,
        dialect.auth("direct"),
    )
    base = sequential(direct, n1)
    ours = sequential(via, n1)
    for label, tally in (("direct", base), ("c=1", ours)):
        if tally.first_error:
            problems.append(f"{label}: {tally.errors} failed, first: {tally.first_error}")
    return Outcome(
        case=case,
        via=via,
        upstream_path=path or "?",
        added_p50=median(ours.latencies) - median(base.latencies),
        added_p99=percentile(ours.latencies, 99) - percentile(base.latencies, 99),
        errors=probed.errors + ours.errors,
        direct_errors=base.errors,
        problems=problems,
    )


def load_round(outcome: Outcome, gateway_pid: int, *, warm_s: float, seconds: float) -> None:
    """One loaded run of the door at CONCURRENCY, added to its outcome."""
    vacuum_database()  # each run starts from the same tables (bench.common.vacuum_database)
    cpu_before, started = cpu_seconds(gateway_pid), time.perf_counter()
    busy, rps = loaded(outcome.via, warm_s=warm_s, seconds=seconds)
    outcome.cpu_s += cpu_seconds(gateway_pid) - cpu_before
    outcome.wall_s += time.perf_counter() - started
    outcome.counted += round(rps * seconds)
    outcome.window_s += seconds
    outcome.answers += len(busy.latencies) + busy.errors
    outcome.errors += busy.errors
    if busy.first_error:
        outcome.problems.append(f"c={CONCURRENCY}: {busy.errors} failed, first: {busy.first_error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter windows (a smoke run)")
    args = parser.parse_args()
    n1, warm_s, seconds = (100, 0.5, 3.0) if args.quick else (500, 1.0, 12.0)

    key = prepare_database()
    load_before = os.getloadavg()[0]
    with fake_upstream(cpu=0) as upstream, gateway(upstream.url, cpu=1) as (url, pid):
        if CPUS > 1:
            # The driver beside the fake upstream, off the gateway's core (where bench_gateway puts wrk).
            os.sched_setaffinity(0, {0})
        outcomes = [run_case(case, upstream, url, key, n1=n1) for case in CASES]
        # The loaded runs in ROUNDS rounds, each round in another order: a machine that drifts during the run
        # (they do, 2-3x) moves every door alike, and "vs chat" compares doors measured in the same minutes.
        for turn in range(ROUNDS):
            shift = turn * len(outcomes) // ROUNDS
            for outcome in outcomes[shift:] + outcomes[:shift]:
                load_round(outcome, pid, warm_s=warm_s, seconds=seconds / ROUNDS)
        rss = hwm_mib(pid)
        upstream.clear()
        chat = DIALECTS["chat"]
        ceiling = {
            stream: loaded(
                Target(upstream.url + chat.path, chat, "gpt-4o-mini", stream, {}),
                warm_s=warm_s,
                seconds=seconds,
            )
            for stream in (False, True)
        }

    chat_rps = {o.case.stream: o.rps for o in outcomes if o.case.door == "chat"}
    chat_cpu = {o.case.stream: o.cpu_ms for o in outcomes if o.case.door == "chat"}
    rows = [
        [
            o.case.door,
            o.case.model,
            "native" if o.case.native else "translated",
            o.upstream_path,
            "stream" if o.case.stream else "json",
            o.rps,
            o.cpu_ms,
            f"{o.core_busy:.0%}",
            o.added_p50,
            o.added_p99,
            o.rps / chat_rps[o.case.stream],
            chat_cpu[o.case.stream] / o.cpu_ms,
            o.errors,
        ]
        for o in outcomes
    ]
    headers = [
        "door",
        "model",
        "call",
        "upstream",
        "kind",
        "req/s",
        "cpu ms/req",
        "gw core",
        "added p50",
        "added p99",
        "vs chat",
        "cpu vs chat",
        "errors",
    ]
    print(
        table(f"Doors side by side (gateway on one core; req/s at concurrency {CONCURRENCY})", headers, rows)
    )
    print(
        f"req/s: answers completed in {ROUNDS} windows of {seconds / ROUNDS:g} s, each after {warm_s:g} s of "
        f"warm-up, the doors' runs interleaved. added p50 / p99: ms\nover the fake upstream called directly in the "
        f"format the gateway used, {n1} sequential requests each. vs chat: over chat completions of the same\n"
        "kind; cpu vs chat: chat's CPU per answer over the door's (above 1, leaner). cpu ms/req: the gateway "
        "process's CPU time per\nanswer during its loaded runs; gw core: the share of its core it used then "
        "(well below 100%: the machine, not the gateway,\nset the pace, and cpu ms/req says more of the "
        "gateway than req/s does)."
    )
    print()
    errors = sum(o.errors for o in outcomes)
    direct_errors = sum(o.direct_errors for o in outcomes) + sum(t.errors for t, _ in ceiling.values())
    print(f"Errors through the gateway: {errors}   calling the fake upstream directly: {direct_errors}")
    print(
        f"Driver ceiling (the fake upstream called directly, concurrency {CONCURRENCY}): "
        f"json {ceiling[False][1]:,.0f} req/s, stream {ceiling[True][1]:,.0f} req/s"
    )
    print(f"Gateway peak RSS: {rss:.1f} MiB   (cores on this machine: {CPUS})")
    print(
        f"1-minute load average: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after (others' work shows here)"
    )
    failed = [o for o in outcomes if o.problems]
    for o in failed:
        print(f"\nFAILED {o.case.door} / {o.case.model} / {'stream' if o.case.stream else 'json'}:")
        for problem in o.problems:
            print(f"  {problem}")
    for stream, (tally, _) in ceiling.items():
        if tally.first_error:
            print(f"\nFAILED driver ceiling ({'stream' if stream else 'json'}): {tally.first_error}")
    return 1 if failed or direct_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
