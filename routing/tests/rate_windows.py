"""What a rate-limit window holds, read from Redis as every process sees it (for tests)."""

from __future__ import annotations

import redis
from django.conf import settings

from routing.ratelimit import TOTAL, WINDOW_MS, log_keys


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def counted(scope: str, scope_id: int) -> tuple[int, int]:
    """(requests, tokens) the scope's window counts now, by Redis's clock."""
    client = _client()
    try:
        seconds, micros = client.time()
        now_ms = seconds * 1000 + micros // 1000
        log, tokens = log_keys(scope, scope_id)
        requests = int(client.zcount(log, f"({now_ms - WINDOW_MS}", "+inf"))
        return requests, int(client.hget(tokens, TOTAL) or 0)
    finally:
        client.close()


def requests_counted(key_id: int) -> int:
    return counted("key", key_id)[0]


def age(scope: str, scope_id: int, seconds: float) -> None:
    """Moves everything the scope's window holds `seconds` into the past: the minute passing, without the wait."""
    client = _client()
    try:
        log, _ = log_keys(scope, scope_id)
        entries = client.zrange(log, 0, -1, withscores=True)
        if entries:
            client.zadd(log, {member: score - seconds * 1000 for member, score in entries}, xx=True)
    finally:
        client.close()


def forget_scripts() -> None:
    """SCRIPT FLUSH: Redis as it is after a restart, knowing none of the scripts by their SHA."""
    client = _client()
    try:
        client.script_flush()
    finally:
        client.close()
