"""Provider health shared by every process through Redis: cooldowns (circuit breaker) and observed latency."""

from __future__ import annotations

import logging
import statistics
import time
from typing import TYPE_CHECKING

from django.conf import settings

from config.redis_clients import REDIS_ERRORS, get_redis

if TYPE_CHECKING:
    from redis.asyncio.client import Pipeline

logger = logging.getLogger(__name__)
LATENCY_SAMPLES = 50
LATENCY_REFRESH_S = 5.0

_latency_cache: dict[str, float | None] = {}
_latency_loaded_at = 0.0


def _fail_key(provider: str) -> str:
    return f"router:cooldown:fails:{provider}"


def _open_key(provider: str) -> str:
    return f"router:cooldown:open:{provider}"


async def cooldowns_get(providers: list[str]) -> set[str]:
    """Providers whose circuit is open. When the cooldown key expires the next request is the probe."""
    redis = get_redis()
    if redis is None or not providers:
        return set()
    try:
        values = await redis.mget([_open_key(p) for p in providers])
    except REDIS_ERRORS:
        return set()
    return {p for p, v in zip(providers, values, strict=True) if v is not None}


async def provider_failed(provider: str) -> None:
    """Counts a failure; ROUTER_COOLDOWN_FAILURES in a row opens the circuit for ROUTER_COOLDOWN_S."""
    redis = get_redis()
    if redis is None:
        return
    try:
        fails = await redis.incr(_fail_key(provider))
        await redis.expire(_fail_key(provider), settings.ROUTER_COOLDOWN_S * 4)
        if fails >= settings.ROUTER_COOLDOWN_FAILURES:
            await redis.set(_open_key(provider), str(int(time.time())), ex=settings.ROUTER_COOLDOWN_S)
            await redis.delete(_fail_key(provider))
            logger.warning("provider cooldown opened", extra={"provider": provider})
    except REDIS_ERRORS:
        return


def success_queue(pipe: Pipeline, provider: str, model_id: str, latency_ms: int) -> None:
    """A success closes the circuit (the probe worked) and adds a latency sample for the model: the commands,
    queued on a caller's pipeline (caching.log_and_store sends them with the cache entry)."""
    pipe.delete(_fail_key(provider), _open_key(provider))
    pipe.lpush(f"router:latency:{model_id}", latency_ms)
    pipe.ltrim(f"router:latency:{model_id}", 0, LATENCY_SAMPLES - 1)


async def latencies_get(model_ids: list[str]) -> dict[str, float | None]:
    """Recent p50 latency per model, refreshed from Redis every few seconds."""
    global _latency_loaded_at
    if time.monotonic() - _latency_loaded_at < LATENCY_REFRESH_S and all(
        m in _latency_cache for m in model_ids
    ):
        return _latency_cache
    redis = get_redis()
    if redis is None:
        return {m: None for m in model_ids}
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for model_id in model_ids:
                pipe.lrange(f"router:latency:{model_id}", 0, LATENCY_SAMPLES - 1)
            results = await pipe.execute()
    except REDIS_ERRORS:
        return {m: _latency_cache.get(m) for m in model_ids}
    for model_id, samples in zip(model_ids, results, strict=True):
        _latency_cache[model_id] = statistics.median(int(s) for s in samples) if samples else None
    _latency_loaded_at = time.monotonic()
    return _latency_cache
