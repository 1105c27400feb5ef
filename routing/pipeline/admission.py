"""A request's first Redis round trip: the response-cache lookup and its admission against rate limits together.

Both are needed before anything is held or sent, and neither waits on the other: a cache hit counts no tokens,
and the admission script sees the entry itself (it checks the cache key exists), so the two go in one
pipeline. Without Redis (the embedded cache), without limits, or for a request that doesn't read the cache,
each stage runs alone, as it would anyway.
"""

from __future__ import annotations

from typing import Any

from config.redis_clients import REDIS_ERRORS, get_redis
from routing.cache import cache_get, cache_get_queue, cache_got
from routing.pipeline.caching import cache_looked_up, cache_read_key
from routing.pipeline.limits import rate_admit, rate_admits, rate_admitted, tokens_estimate
from routing.pipeline.run import CompletionRun
from routing.ratelimit import rate_limit_check_queue, rate_limit_checked


async def cache_lookup_and_admit(run: CompletionRun) -> dict[str, Any] | None:
    """The entry answering the request (None: a miss or a bypass), the request admitted (or 429 raised)."""
    key = cache_read_key(run)
    admits = rate_admits(run)
    redis = get_redis()
    if key is None or not admits or redis is None:
        entry = None if key is None else cache_looked_up(run, await cache_get(key))
        if admits:
            await rate_admit(run, cached=entry is not None)
        return entry
    pipe = redis.pipeline(transaction=False)
    cache_get_queue(pipe, key)
    admission = rate_limit_check_queue(
        pipe,
        run.caller.rate_limits,
        tokens=(tokens_estimate(run),),
        members=(run.request_id,),
        free_if_cached=key,
    )
    got: Any
    checked: Any
    try:
        got, checked = await pipe.execute(raise_on_error=False)
    except REDIS_ERRORS as exc:  # the cache is bypassed, the limits fail open (or closed) as they would alone
        got = checked = exc
    finally:
        await pipe.reset()
    entry = cache_looked_up(run, cache_got(got))
    rate_admitted(run, await rate_limit_checked(admission, checked))
    return entry
