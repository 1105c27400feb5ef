"""Per-key rate limits in Redis (shared by every process): requests per minute, fixed one-minute windows."""

from __future__ import annotations

import time

from django.conf import settings

from accounts.authentication import Principal
from config.api_errors import RateLimited
from routing.metrics import RATE_LIMIT_REFUSALS
from routing.redis_client import REDIS_ERRORS, get_redis


async def rate_limit_check(principal: Principal) -> None:
    """Counts the request against its key's minute; the one past the limit gets 429 with Retry-After."""
    limit = principal.rate_limit_rpm or settings.ROUTER_RATE_LIMIT_RPM
    if not limit:
        return
    redis = get_redis()
    if redis is None:
        return
    now = time.time()
    window = int(now // 60)
    key = f"router:rl:{principal.key_id}:{window}"
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = await pipe.execute()
    except REDIS_ERRORS:
        return  # a rate limiter that is down lets traffic through; budgets still hold the money
    if count > limit:
        RATE_LIMIT_REFUSALS.inc()
        retry_after = max(1, int(60 - (now % 60)) + 1)
        raise RateLimited(
            f"Rate limit of {limit} requests per minute reached for this API key",
            headers={"Retry-After": str(retry_after)},
            extra={"limit_rpm": limit},
        )
