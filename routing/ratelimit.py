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

import hashlib
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from redis.exceptions import NoScriptError

from accounts.authentication import Principal
from config.api_errors import RateLimited, ServiceUnavailable
from config.redis_clients import REDIS_ERRORS, get_redis
from routing.metrics import RATE_LIMIT_REFUSALS

WINDOW_S = 60
WINDOW_MS = WINDOW_S * 1000
TOTAL = "_total"  # the tokens hash's running total (members are request ids, never this)

# Shared by the scripts. KEYS come in pairs per scope: its log (sorted set), its tokens (hash).
_COMMON = """
local function clock(given)
  if given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')  -- one clock for every process, whatever their hosts' clocks say
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Drops what left the window (admitted at or before `horizon`) from the log, its tokens from the total.
local function expire(log, counts, horizon)
  while true do
    local old = redis.call('ZRANGEBYSCORE', log, '-inf', horizon, 'LIMIT', 0, 500)
    if #old == 0 then return end
    local amounts = redis.call('HMGET', counts, unpack(old))
    local gone = 0
    for i = 1, #amounts do gone = gone + (tonumber(amounts[i]) or 0) end
    redis.call('ZREM', log, unpack(old))
    redis.call('HDEL', counts, unpack(old))
    if gone ~= 0 then redis.call('HINCRBY', counts, '_total', -gone) end
    if #old < 500 then return end
  end
end
"""

# ARGV: now (ms, '' = Redis's clock), window ms, n, n members, n token amounts, then per scope its requests
# and tokens limits (0 = none). Returns {admitted 0|1, then per scope: requests counted, tokens counted, ms
# until its window is empty, ms until the refused requests' fit (0 fits, -1 never), the same for tokens}.
_ADMIT = (
    _COMMON
    + """
local now = clock(ARGV[1])
local window = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local wanted = 0
for i = 1, n do wanted = wanted + tonumber(ARGV[3 + n + i]) end
local scopes = #KEYS / 2

-- ms until the oldest entries of `log` holding `free` requests (by_tokens: tokens) have left the window
local function freed_after(log, counts, free, by_tokens)
  local start = 0
  local got = 0
  while true do
    local rows = redis.call('ZRANGE', log, start, start + 199, 'WITHSCORES')
    if #rows == 0 then return window end
    local amounts = {}
    if by_tokens then
      local members = {}
      for i = 1, #rows, 2 do members[#members + 1] = rows[i] end
      amounts = redis.call('HMGET', counts, unpack(members))
    end
    for i = 1, #rows, 2 do
      if by_tokens then got = got + (tonumber(amounts[(i + 1) / 2]) or 0) else got = got + 1 end
      if got >= free then return math.max(1, tonumber(rows[i + 1]) + window - now) end
    end
    start = start + 200
  end
end

local state = {}
local admitted = 1
for s = 1, scopes do
  local log, counts = KEYS[2 * s - 1], KEYS[2 * s]
  expire(log, counts, now - window)
  local count = redis.call('ZCARD', log)
  local used = tonumber(redis.call('HGET', counts, '_total') or '0')
  local rpm, tpm = tonumber(ARGV[3 + 2 * n + 2 * s - 1]), tonumber(ARGV[3 + 2 * n + 2 * s])
  local wait_requests, wait_tokens = 0, 0
  if rpm > 0 and count + n > rpm then
    if n > rpm then wait_requests = -1 else wait_requests = freed_after(log, counts, count + n - rpm, false) end
  end
  if tpm > 0 and used + wanted > tpm then
    if wanted > tpm then wait_tokens = -1 else wait_tokens = freed_after(log, counts, used + wanted - tpm, true) end
  end
  if wait_requests ~= 0 or wait_tokens ~= 0 then admitted = 0 end
  state[s] = {count, used, wait_requests, wait_tokens}
end

local out = {admitted}
for s = 1, scopes do
  local log, counts = KEYS[2 * s - 1], KEYS[2 * s]
  local count, used = state[s][1], state[s][2]
  if admitted == 1 then
    for i = 1, n do
      local member, tokens = ARGV[3 + i], tonumber(ARGV[3 + n + i])
      redis.call('ZADD', log, now, member)
      redis.call('HSET', counts, member, tokens)
    end
    if wanted ~= 0 then redis.call('HINCRBY', counts, '_total', wanted) end
    redis.call('PEXPIRE', log, window + 1000)
    redis.call('PEXPIRE', counts, window + 1000)
    count, used = count + n, used + wanted
  end
  local newest = redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')
  local empty = 0
  if #newest > 0 then empty = math.max(0, tonumber(newest[2]) + window - now) end
  out[#out + 1] = count
  out[#out + 1] = used
  out[#out + 1] = empty
  out[#out + 1] = state[s][3]
  out[#out + 1] = state[s][4]
end
return out
"""
)

# ARGV: now (ms or ''), window ms, member, actual tokens. The member's tokens become the actual count in every
# scope whose window still holds it; one that has left the window (or was never counted) is not touched.
_SETTLE = (
    _COMMON
    + """
local now = clock(ARGV[1])
local window = tonumber(ARGV[2])
local member, tokens = ARGV[3], tonumber(ARGV[4])
for s = 1, #KEYS / 2 do
  local log, counts = KEYS[2 * s - 1], KEYS[2 * s]
  local at = redis.call('ZSCORE', log, member)
  if at and tonumber(at) > now - window then
    local before = tonumber(redis.call('HGET', counts, member) or '0')
    if before ~= tokens then
      redis.call('HSET', counts, member, tokens)
      redis.call('HINCRBY', counts, '_total', tokens - before)
    end
  end
end
return 1
"""
)

# ARGV: members. Takes the members (requests that will never run) out of every scope, tokens and all.
_RELEASE = """
for s = 1, #KEYS / 2 do
  local log, counts = KEYS[2 * s - 1], KEYS[2 * s]
  local amounts = redis.call('HMGET', counts, unpack(ARGV))
  local gone = 0
  for i = 1, #amounts do gone = gone + (tonumber(amounts[i]) or 0) end
  redis.call('ZREM', log, unpack(ARGV))
  redis.call('HDEL', counts, unpack(ARGV))
  if gone ~= 0 and redis.call('EXISTS', counts) == 1 then redis.call('HINCRBY', counts, '_total', -gone) end
end
return 1
"""
_SHA = {script: hashlib.sha1(script.encode()).hexdigest() for script in (_ADMIT, _SETTLE, _RELEASE)}  # noqa: S324


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


async def _run(script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    redis = get_redis()
    assert redis is not None
    try:
        return await redis.evalsha(_SHA[script], len(keys), *keys, *args)
    except NoScriptError:  # a restarted or flushed Redis: EVAL loads the script again
        return await redis.eval(script, len(keys), *keys, *args)


def _now_arg(now: float | None) -> str:
    return "" if now is None else str(round(now * 1000))


async def rate_limit_check(
    limits: Sequence[Limit],
    *,
    requests: int = 1,
    tokens: Sequence[int] | None = None,
    members: Sequence[str] | None = None,
    now: float | None = None,
) -> Admitted | None:
    """Admits and counts `requests` (with their `tokens`, one estimate each) against every limit, or raises 429
    with Retry-After and the x-ratelimit headers, counting nothing, when they don't all fit. `members` name
    them in the windows (request ids, to settle them later); `now` (seconds) replaces Redis's clock in tests.
    None when no limit applies or Redis is unavailable (nothing was counted)."""
    if not limits or get_redis() is None:
        return None
    counts = tuple(tokens) if tokens is not None else (0,) * requests
    names = tuple(members) if members is not None else tuple(f"rl_{secrets.token_hex(8)}" for _ in counts)
    assert len(counts) == len(names) == requests
    keys = tuple(key for limit in limits for key in limit.keys)
    args: list[Any] = [_now_arg(now), WINDOW_MS, requests, *names, *counts]
    for limit in limits:
        args.extend((limit.rpm or 0, limit.tpm or 0))
    try:
        reply = await _run(_ADMIT, keys, args)
    except REDIS_ERRORS:
        if settings.ROUTER_RATE_LIMIT_FAIL_CLOSED:
            raise ServiceUnavailable(
                "Rate limits can't be checked right now; try again shortly",
                code="rate_limit_unavailable",
                headers={"Retry-After": "1"},
            ) from None
        return None  # fail open (the default): traffic goes through; budgets still hold the money
    values = [int(v) for v in reply[1:]]
    rows = [
        (values[i], values[i + 1], values[i + 2], values[i + 3], values[i + 4])
        for i in range(0, len(values), 5)
    ]
    headers = _headers(limits, rows)
    if reply[0] == 1:
        return Admitted(keys=keys, members=names, tokens=counts, headers=headers)
    RATE_LIMIT_REFUSALS.inc()
    raise _refusal(limits, rows, requests=requests, tokens=sum(counts), headers=headers)


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
        await _run(_SETTLE, keys, [_now_arg(now), WINDOW_MS, member, max(0, tokens)])
    except REDIS_ERRORS:
        return


async def rate_limit_release(admitted: Admitted | None) -> None:
    """Gives back what rate_limit_check counted for requests that will never run (the batch was refused)."""
    if admitted is None or get_redis() is None:
        return
    try:
        await _run(_RELEASE, admitted.keys, admitted.members)
    except REDIS_ERRORS:
        return  # they leave the window within the minute anyway
