"""Per-key rate limits in Redis (shared by every process): requests per minute, fixed one-minute windows.

Checking and counting are one Lua script, so only admitted requests count (a client retrying a 429 in a loop
does not push its own window further out) and, however many processes check at once, the admitted never add
up to more than the limit. A fan-out (a batch of N, a comparison of N models) is admitted as N requests or
not at all.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from redis.exceptions import NoScriptError

from accounts.authentication import Principal
from config.api_errors import RateLimited, ServiceUnavailable
from config.redis_clients import REDIS_ERRORS, get_redis
from routing.metrics import RATE_LIMIT_REFUSALS

WINDOW_S = 60
KEY_TTL_S = 2 * WINDOW_S

# KEYS[1] the window's counter; ARGV: limit, requests wanted, TTL. Returns {admitted 0|1, count after}.
_ADMIT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[2])
if used + wanted > tonumber(ARGV[1]) then
  return {0, used}
end
used = redis.call('INCRBY', KEYS[1], wanted)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {1, used}
"""
# KEYS[1] the window's counter; ARGV[1] requests to give back. A counter that expired meanwhile stays gone.
_RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local left = redis.call('DECRBY', KEYS[1], tonumber(ARGV[1]))
if left < 0 then
  redis.call('SET', KEYS[1], 0, 'KEEPTTL')
  left = 0
end
return left
"""
_SHA = {script: hashlib.sha1(script.encode()).hexdigest() for script in (_ADMIT, _RELEASE)}  # noqa: S324


@dataclass(frozen=True, slots=True)
class Admitted:
    """What rate_limit_check counted, to give back (rate_limit_release) when those requests never run."""

    key: str
    requests: int


def window_key(key_id: int, now: float | None = None) -> str:
    """The Redis counter of a key's current minute."""
    window = int((time.time() if now is None else now) // WINDOW_S)
    return f"router:rl:{key_id}:{window}"


async def _run(script: str, key: str, *args: int) -> Any:
    redis = get_redis()
    assert redis is not None
    try:
        return await redis.evalsha(_SHA[script], 1, key, *args)
    except NoScriptError:  # a restarted or flushed Redis: EVAL loads the script again
        return await redis.eval(script, 1, key, *args)


async def rate_limit_check(principal: Principal, *, requests: int = 1) -> Admitted | None:
    """Admits and counts `requests` against the key's minute, or raises 429 with Retry-After, counting nothing,
    when they don't all fit. None when no limit applies or Redis is unavailable (nothing was counted)."""
    limit = principal.rate_limit_rpm or settings.ROUTER_RATE_LIMIT_RPM
    if not limit or get_redis() is None:
        return None
    now = time.time()
    key = window_key(principal.key_id, now)
    try:
        admitted, used = await _run(_ADMIT, key, limit, requests, KEY_TTL_S)
    except REDIS_ERRORS:
        if settings.ROUTER_RATE_LIMIT_FAIL_CLOSED:
            raise ServiceUnavailable(
                "Rate limits can't be checked right now; try again shortly",
                code="rate_limit_unavailable",
                headers={"Retry-After": "1"},
            ) from None
        return None  # fail open (the default): traffic goes through; budgets still hold the money
    if admitted:
        return Admitted(key=key, requests=requests)
    RATE_LIMIT_REFUSALS.inc()
    retry_after = max(1, int(WINDOW_S - (now % WINDOW_S)) + 1)
    if requests == 1:
        message = f"Rate limit of {limit} requests per minute reached for this API key"
    elif requests > limit:
        message = (
            f"{requests} requests at once are more than this API key's limit of {limit} requests per minute "
            "allows; send them in smaller parts"
        )
    else:
        message = (
            f"{requests} requests do not fit in this API key's limit of {limit} requests per minute "
            f"({max(0, limit - int(used))} left in this minute)"
        )
    raise RateLimited(
        message,
        headers={"Retry-After": str(retry_after)},
        extra={"limit_rpm": limit, **({"requested": requests} if requests > 1 else {})},
    )


async def rate_limit_release(admitted: Admitted | None) -> None:
    """Gives back what rate_limit_check counted for requests that will never run (the batch was refused)."""
    if admitted is None or get_redis() is None:
        return
    try:
        await _run(_RELEASE, admitted.key, admitted.requests)
    except REDIS_ERRORS:
        return  # the window ends within the minute anyway
