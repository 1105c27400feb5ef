"""One async Redis client per event loop for the hot path (cache, cooldowns, rate limits, latencies).

Redis being down must never fail a completion: callers treat RedisUnavailable as "skip this feature".
"""

from __future__ import annotations

import asyncio
import weakref

import redis.asyncio as aioredis
from django.conf import settings

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()
REDIS_ERRORS = (aioredis.RedisError, OSError, asyncio.TimeoutError)


def get_redis() -> aioredis.Redis | None:
    """The loop's client, or None in embedded mode (no REDIS_URL)."""
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = aioredis.Redis.from_url(
            settings.REDIS_URL,
            socket_connect_timeout=0.25,
            socket_timeout=0.5,
            max_connections=256,
            health_check_interval=30,
        )
        _clients[loop] = client
    return client


async def aclose_redis() -> None:
    """Closes the running loop's client (short-lived loops, e.g. one per Celery task, must not leak sockets)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()
