"""The response cache: exact match on everything that changes an answer, per user (or per shared group).

In Redis when REDIS_URL is set (shared by every process); without it (the embedded `make run` default), in
the process's local memory, through Django's LocMemCache: in-process, no I/O, so called directly.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from django.conf import settings

from config.redis_clients import REDIS_ERRORS, get_redis

if TYPE_CHECKING:
    from redis.asyncio.client import Pipeline

logger = logging.getLogger(__name__)

# What changes the answer: anything else (stream, user, our router fields, an embedding's encoding) does not.
KEY_FIELDS = (
    "messages",
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "tools",
    "tool_choice",
    "response_format",
    "seed",
    "input",  # embeddings: the inputs and dimensions are the whole request
    "dimensions",
)


@dataclass(frozen=True, slots=True)
class CacheLookup:
    status: str  # hit | miss | bypass
    entry: dict[str, Any] | None = None


def cache_scope(*, user_id: int, cache_group: str) -> str:
    """Entries are private to a user unless an admin put users in the same cache group."""
    return f"group:{cache_group}" if cache_group else f"user:{user_id}"


def cache_key(*, scope: str, model_id: str, params: dict[str, Any]) -> str:
    canonical = {"model": model_id, **{field: params.get(field) for field in KEY_FIELDS}}
    digest = hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"router:cache:{scope}:{digest}"


def _local() -> Any:
    from django.core.cache import cache

    return cache


async def cache_get(key: str) -> CacheLookup:
    redis = get_redis()
    if redis is None:
        local = _local().get(key)
        return CacheLookup("miss") if local is None else CacheLookup("hit", orjson.loads(local))
    try:
        raw = await redis.get(key)
    except REDIS_ERRORS as exc:
        return cache_got(exc)
    return cache_got(raw)


def cache_get_queue(pipe: Pipeline, key: str) -> None:
    """cache_get's read queued on a caller's pipeline to Redis; its reply (or the pipeline's error) goes to
    cache_got."""
    pipe.get(key)


def cache_got(reply: bytes | str | BaseException | None) -> CacheLookup:
    """A read's reply as a lookup: an error (Redis away) bypasses the cache."""
    if isinstance(reply, BaseException):
        logger.warning("response cache unavailable; bypassing")
        return CacheLookup("bypass")
    if reply is None:
        return CacheLookup("miss")
    return CacheLookup("hit", orjson.loads(reply))


async def cache_put(key: str, entry: dict[str, Any]) -> bool:
    redis = get_redis()
    ttl = settings.ROUTER_CACHE_TTL_S
    if ttl <= 0:
        return False
    if redis is None:
        _local().set(key, orjson.dumps(entry), timeout=ttl)
        return True
    try:
        await redis.set(key, orjson.dumps(entry), ex=ttl)
    except REDIS_ERRORS:
        return False
    return True


def cache_put_queue(pipe: Pipeline, key: str, entry: dict[str, Any]) -> None:
    """cache_put's write, queued on a caller's pipeline to Redis (nothing when the cache keeps nothing)."""
    ttl = settings.ROUTER_CACHE_TTL_S
    if ttl > 0:
        pipe.set(key, orjson.dumps(entry), ex=ttl)
