"""Rate limits in Redis, shared by every process: requests and tokens per minute, per key and per team, sliding.

The window is a sliding log: each scope (a key, a team) keeps a sorted set of the requests it admitted in the
last minute (member: the request id, score: when, in Redis's own clock) and a hash of the tokens each one
counts, with their running total. A request counts for exactly 60 s after it was admitted, so no minute
boundary ever lets twice the limit through (a fixed window does, a two-bucket estimate lets through slightly
more or less than the limit). Memory is one entry per admitted request in the last minute per scope.

Every limit that applies (the key's requests and tokens, its team's) is checked and counted in one Lua script:
a request is admitted by all of them or counted by none, however many processes check at once. A fan-out (a
batch of N, a comparison of N models) is admitted as N requests with their N token estimates, or not at all.
Tokens are an estimate at admission (the prompt's bound plus the output allowed); `rate_limit_settle` replaces
it by the actual count while the request is still in the window.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

from accounts.authentication import Principal
from config.api_errors import RateLimited, ServiceUnavailable
from config.redis_clients import REDIS_ERRORS, get_redis
from routing.metrics import RATE_LIMIT_REFUSALS
from routing.ratelimit_scripts import ADMIT, RELEASE, SETTLE, SHA, run_lua

WINDOW_S = 60
WINDOW_MS = WINDOW_S * 1000
TOTAL = "_total"  # the tokens hash's running total (members are request ids, never this)


@dataclass(frozen=True, slots=True)
class Limit:
    """The limits of one scope: a key or a team. None: that kind is not limited."""

    scope: str  # "key" | "team"
    scope_id: int
    rpm: int | None
    tpm: int | None

    @property
    def keys(self) -> tuple[str, str]:
        return log_keys(self.scope, self.scope_id)

    def named(self) -> str:
        return "this API key" if self.scope == "key" else f"this API key's team (team {self.scope_id})"


def log_keys(scope: str, scope_id: int) -> tuple[str, str]:
    """The Redis keys of a scope's window: its log (sorted set) and its tokens (hash)."""
    return f"router:rl:{scope}:{scope_id}", f"router:rl:{scope}:{scope_id}:tokens"


def rate_limits_of(principal: Principal) -> tuple[Limit, ...]:
    """What limits a caller: its key (its own setting, else the ROUTER_RATE_LIMIT_* default) and, for a team
    key, its team (the team's settings; no default). Scopes with no limit at all are left out."""
    limits = [
        Limit(
            "key",
            principal.key_id,
            principal.rate_limit_rpm or settings.ROUTER_RATE_LIMIT_RPM,
            principal.rate_limit_tpm or settings.ROUTER_RATE_LIMIT_TPM,
        )
    ]
    if principal.team_id is not None:
        limits.append(
            Limit("team", principal.team_id, principal.team_rate_limit_rpm, principal.team_rate_limit_tpm)
        )
    return tuple(limit for limit in limits if limit.rpm or limit.tpm)


def counted_keys(*, key_id: int | None, team_id: int | None) -> tuple[str, ...]:
    """Every window a request of this key may have been counted in (to settle it without knowing its limits)."""
    keys: list[str] = []
    if key_id is not None:
        keys.extend(log_keys("key", key_id))
    if team_id is not None:
        keys.extend(log_keys("team", team_id))
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class Window:
    """One kind of limit as the x-ratelimit headers show it: the tightest scope's."""

    limit: int
    remaining: int
    reset_ms: int  # until the window holds nothing it holds now (OpenAI: "resets to its initial state")


@dataclass(frozen=True, slots=True)
class Admitted:
    """What rate_limit_check counted: to settle (rate_limit_settle), or give back (rate_limit_release) when those
    requests never run; and the x-ratelimit headers of the response."""

    keys: tuple[str, ...]
    members: tuple[str, ...]
    tokens: tuple[int, ...]
    headers: dict[str, str]


def duration(ms: int) -> str:
    """OpenAI's reset format (Go durations): 20ms, 1s, 8.64s, 1m0s."""
    if ms < 1000:
        return f"{max(ms, 0)}ms"
    minutes, rest = divmod(ms, 60_000)
    seconds = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


def _headers(limits: Sequence[Limit], rows: list[tuple[int, int, int, int, int]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for kind, field, used_at in (("requests", "rpm", 0), ("tokens", "tpm", 1)):
        windows = [
            Window(limit=cap, remaining=max(0, cap - row[used_at]), reset_ms=row[2])
            for limit, row in zip(limits, rows, strict=True)
            if (cap := getattr(limit, field))
        ]
        if not windows:
            continue
        tightest = min(windows, key=lambda w: w.remaining)  # the key's on a tie: it comes first
        headers[f"x-ratelimit-limit-{kind}"] = str(tightest.limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(tightest.remaining)
        headers[f"x-ratelimit-reset-{kind}"] = duration(tightest.reset_ms)
    return headers


def _now_arg(now: float | None) -> str:
    return "" if now is None else str(round(now * 1000))


@dataclass(frozen=True, slots=True)
class Admission:
    """One admission's script call (keys, arguments), and what it needs to read the reply."""

    limits: tuple[Limit, ...]
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    members: tuple[str, ...]
    tokens: tuple[int, ...]


def _admission(
    limits: Sequence[Limit],
    requests: int,
    tokens: Sequence[int] | None,
    members: Sequence[str] | None,
    now: float | None,
    free_if_cached: str | None,
) -> Admission:
    counts = tuple(tokens) if tokens is not None else (0,) * requests
    names = tuple(members) if members is not None else tuple(f"rl_{secrets.token_hex(8)}" for _ in counts)
    assert len(counts) == len(names) == requests
    keys = tuple(key for limit in limits for key in limit.keys)
    args: list[Any] = [_now_arg(now), WINDOW_MS, requests, *names, *counts]
    for limit in limits:
        args.extend((limit.rpm or 0, limit.tpm or 0))
    script_keys = keys if free_if_cached is None else (*keys, free_if_cached)
    return Admission(tuple(limits), script_keys, tuple(args), names, counts)


async def rate_limit_check(
    limits: Sequence[Limit],
    *,
    requests: int = 1,
    tokens: Sequence[int] | None = None,
    members: Sequence[str] | None = None,
    now: float | None = None,
    free_if_cached: str | None = None,
) -> Admitted | None:
    """Admits and counts `requests` (with their `tokens`, one estimate each) against every limit, or raises 429
    with Retry-After and the x-ratelimit headers, counting nothing, when they don't all fit. `members` name
    them in the windows (request ids, to settle them later); `now` (seconds) replaces Redis's clock in tests;
    when the response cache holds `free_if_cached` (a cache key), they count no tokens. None when no limit
    applies or Redis is unavailable (nothing was counted)."""
    if not limits or get_redis() is None:
        return None
    admission = _admission(limits, requests, tokens, members, now, free_if_cached)
    try:
        reply = await run_lua(ADMIT, admission.keys, admission.args)
    except REDIS_ERRORS:
        _unavailable()
        return None
    return _admitted(admission, reply)


def rate_limit_check_queue(
    pipe: Pipeline,
    limits: Sequence[Limit],
    *,
    tokens: Sequence[int],
    members: Sequence[str],
    free_if_cached: str | None = None,
) -> Admission:
    """rate_limit_check's script queued on a caller's pipeline by its SHA (Redis's clock); the caller hands its
    reply, or the pipeline's error, to `rate_limit_checked`."""
    admission = _admission(limits, len(tokens), tokens, members, None, free_if_cached)
    pipe.evalsha(SHA[ADMIT], len(admission.keys), *admission.keys, *admission.args)
    return admission


async def rate_limit_checked(admission: Admission, reply: Any) -> Admitted | None:
    """A queued check's reply read as rate_limit_check reads its own; a NOSCRIPT answer (Redis restarted or
    flushed) runs the script again as itself."""
    try:
        if isinstance(reply, NoScriptError):
            reply = await run_lua(ADMIT, admission.keys, admission.args)
        elif isinstance(reply, Exception):
            raise reply
    except REDIS_ERRORS:
        _unavailable()
        return None
    return _admitted(admission, reply)


def _unavailable() -> None:
    """Redis could not check: fail open (the default: traffic goes through; budgets still hold the money), or
    closed (ROUTER_RATE_LIMIT_FAIL_CLOSED) with a 503."""
    if settings.ROUTER_RATE_LIMIT_FAIL_CLOSED:
        raise ServiceUnavailable(
            "Rate limits can't be checked right now; try again shortly",
            code="rate_limit_unavailable",
            headers={"Retry-After": "1"},
        )


def _admitted(admission: Admission, reply: list[Any]) -> Admitted:
    limits = admission.limits
    values = [int(v) for v in reply[1 : 1 + 5 * len(limits)]]
    rows = [
        (values[i], values[i + 1], values[i + 2], values[i + 3], values[i + 4])
        for i in range(0, len(values), 5)
    ]
    counts = admission.tokens
    if len(reply) > 1 + 5 * len(limits) and int(reply[-1]) == 1:  # its answer is cached: no tokens counted
        counts = (0,) * len(counts)
    headers = _headers(limits, rows)
    if reply[0] == 1:
        keys = admission.keys[: 2 * len(limits)]  # the windows, without the cache key
        return Admitted(keys=keys, members=admission.members, tokens=counts, headers=headers)
    RATE_LIMIT_REFUSALS.inc()
    raise _refusal(limits, rows, requests=len(counts), tokens=sum(counts), headers=headers)


def _refusal(
    limits: Sequence[Limit],
    rows: list[tuple[int, int, int, int, int]],
    *,
    requests: int,
    tokens: int,
    headers: dict[str, str],
) -> RateLimited:
    """The 429 naming the first limit that refused; Retry-After is when every refusing limit would admit."""
    waits: list[int] = []
    first: tuple[Limit, str, int, int] | None = None  # limit, kind, its wait, what it has counted
    for limit, (count, used, _, wait_requests, wait_tokens) in zip(limits, rows, strict=True):
        for kind, wait, counted in (("requests", wait_requests, count), ("tokens", wait_tokens, used)):
            if wait == 0:
                continue
            waits.append(WINDOW_MS if wait < 0 else wait)
            if first is None:
                first = (limit, kind, wait, counted)
    assert first is not None
    limit, kind, wait, counted = first
    cap = limit.rpm if kind == "requests" else limit.tpm
    assert cap is not None
    who = limit.named()
    many = f"these {requests} requests count" if requests > 1 else "this request counts"
    if kind == "requests" and requests == 1:
        message = f"Rate limit of {cap} requests per minute reached for {who}"
    elif kind == "requests" and wait < 0:
        message = (
            f"{requests} requests at once are more than the {cap} requests per minute allowed for {who}; "
            "send them in smaller parts"
        )
    elif kind == "requests":
        message = (
            f"{requests} requests do not fit in the {cap} requests per minute allowed for {who} "
            f"({max(0, cap - counted)} left in the last minute)"
        )
    elif wait < 0:
        message = (
            f"{many.capitalize()} up to {tokens} tokens, more than the {cap} tokens per minute allowed for "
            f"{who}" + ("; send them in smaller parts" if requests > 1 else "")
        )
    else:
        message = (
            f"Rate limit of {cap} tokens per minute reached for {who}: {many} up to {tokens} tokens and "
            f"{max(0, cap - counted)} are left in the last minute"
        )
    extra: dict[str, Any] = {"scope": limit.scope, f"limit_{'rpm' if kind == 'requests' else 'tpm'}": cap}
    if requests > 1:
        extra["requested"] = requests
    if kind == "tokens":
        extra["requested_tokens"] = tokens
    retry_after = max(1, math.ceil(max(waits) / 1000))
    return RateLimited(message, headers={"Retry-After": str(retry_after), **headers}, extra=extra)


async def rate_limit_settle(
    *, keys: Sequence[str], member: str, tokens: int, now: float | None = None
) -> None:
    """Replaces a counted request's token estimate by its actual count, in every window that still holds it
    (given back or added). Best effort: a window it left, or Redis being away, leaves things as they are."""
    if not keys or get_redis() is None:
        return
    try:
        await run_lua(SETTLE, keys, [_now_arg(now), WINDOW_MS, member, max(0, tokens)])
    except REDIS_ERRORS:
        return


def rate_limit_settle_queue(pipe: Pipeline, *, keys: Sequence[str], member: str, tokens: int) -> None:
    """rate_limit_settle's script queued on a caller's pipeline, by its SHA: Redis answers NoScriptError in
    that command's place when it no longer has the script, and the caller then runs rate_limit_settle."""
    pipe.evalsha(SHA[SETTLE], len(keys), *keys, _now_arg(None), WINDOW_MS, member, max(0, tokens))


async def rate_limit_release(admitted: Admitted | None) -> None:
    """Gives back what rate_limit_check counted for requests that will never run (the batch was refused)."""
    if admitted is None or get_redis() is None:
        return
    try:
        await run_lua(RELEASE, admitted.keys, admitted.members)
    except REDIS_ERRORS:
        return  # they leave the window within the minute anyway
