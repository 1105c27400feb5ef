"""A request's first Redis round trip: the cache lookup and the rate admission in one pipeline, a cache hit
counting no tokens, a Redis that forgot the admission script answered by the script itself."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from django.test import AsyncClient

from accounts.authentication import forget_cached_keys
from accounts.models import ApiKey
from accounts.services import api_key_issue
from config.db import close_pools
from config.redis_clients import CircuitConnection, get_redis
from routing.cache import cache_key
from routing.models import GatewayRequest
from routing.ratelimit import Limit, rate_limit_check
from routing.tests.rate_windows import counted, forget_scripts

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def round_trips(monkeypatch) -> list[int]:
    """One entry per request or pipeline written to Redis by the hot path's client."""
    sent: list[int] = []
    send = CircuitConnection.send_packed_command

    async def counting(self: CircuitConnection, command: Any, check_health: bool = True) -> None:
        sent.append(1)
        await send(self, command, check_health)

    monkeypatch.setattr(CircuitConnection, "send_packed_command", counting)
    return sent


async def _chat(key: str, question: str, **extra: Any) -> tuple[int, dict[str, Any], Any]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}], "max_tokens": 5}
    try:
        response = await AsyncClient().post(
            "/v1/chat/completions",
            {**body, **extra},
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )
        if response.streaming:  # to its end: the stream is recorded when its last chunk is relayed
            events = b"".join([chunk async for chunk in response.streaming_content])
            assert events.rstrip().endswith(b"data: [DONE]"), events
            return response.status_code, {}, response
    finally:
        await close_pools()
    return response.status_code, json.loads(response.content), response


def _limited_key(alice, **limits: int) -> tuple[int, str]:
    api_key, key = api_key_issue(user=alice, name="limited", **limits)
    return api_key.pk, key


async def test_a_limited_cached_request_makes_two_redis_round_trips_miss_or_hit(upstream, alice, round_trips):
    key_id, key = await asyncio.to_thread(_limited_key, alice, rate_limit_rpm=100, rate_limit_tpm=100_000)
    status, _, _ = await _chat(key, "Warm the key's lookup?")
    assert status == 200
    for question in ("What is the capital of France?", "What is the capital of France?"):  # miss, then hit
        round_trips.clear()
        status, answer, response = await _chat(key, question)
        assert status == 200, answer
        # The lookup with the admission; then the health sample, the cache entry and the settle (a hit: its log
        # row alone, in PostgreSQL, nothing left to settle in Redis).
        assert len(round_trips) == (2 if response["X-Router-Cache"] == "miss" else 1), response[
            "X-Router-Cache"
        ]
    assert response["X-Router-Cache"] == "hit"
    rows = [row async for row in GatewayRequest.objects.filter(api_key_id=key_id).order_by("created_at")]
    assert [row.cached for row in rows] == [False, False, True]
    assert await asyncio.to_thread(counted, "key", key_id) == (3, rows[0].total_tokens + rows[1].total_tokens)


async def test_a_cache_hit_is_admitted_with_no_tokens_where_a_miss_would_not_fit(upstream, alice):
    key_id, key = await asyncio.to_thread(_limited_key, alice, rate_limit_tpm=1_000)
    status, first, response = await _chat(key, "What is the capital of France?")
    assert status == 200 and response["X-Router-Cache"] == "miss", first
    used = first["usage"]["total_tokens"]
    estimate = 1_000 - int(response["x-ratelimit-remaining-tokens"])  # what a miss counts when admitted
    assert estimate > 1
    # Room for no estimate beside what the first one settled to, but for a request of no tokens.
    await asyncio.to_thread(_set_tpm, key_id, used + 1)
    status, refused, _ = await _chat(key, "And the capital of Spain?")
    assert status == 429, refused
    assert refused["error"]["code"] == "rate_limit_exceeded"
    status, again, response = await _chat(key, "What is the capital of France?")
    assert status == 200, again
    assert response["X-Router-Cache"] == "hit"
    assert response["x-ratelimit-remaining-tokens"] == "1"
    assert await asyncio.to_thread(counted, "key", key_id) == (2, used)


def _set_tpm(key_id: int, tpm: int) -> None:
    ApiKey.objects.filter(pk=key_id).update(rate_limit_tpm=tpm)
    forget_cached_keys()


@pytest.mark.parametrize("stream", [False, True])
async def test_a_redis_that_forgot_the_admission_script_still_admits_and_counts(upstream, alice, stream):
    key_id, key = await asyncio.to_thread(_limited_key, alice, rate_limit_rpm=100, rate_limit_tpm=100_000)
    await asyncio.to_thread(forget_scripts)
    status, answer, response = await _chat(key, f"What is the capital of France? {stream}", stream=stream)
    assert status == 200, answer
    assert response["x-ratelimit-limit-requests"] == "100"
    row = await GatewayRequest.objects.aget(pk=response["X-Request-Id"])
    assert row.status == "success"
    assert await asyncio.to_thread(counted, "key", key_id) == (1, row.total_tokens)


async def test_the_admission_counts_no_tokens_only_while_the_cache_key_exists():
    limits = (Limit("key", 987_654, None, 50),)
    entry = cache_key(scope="user:987654", model_id="gpt-4o-mini", params={"messages": ["admission"]})
    redis = get_redis()
    assert redis is not None
    await redis.delete(entry, *limits[0].keys)
    with pytest.raises(Exception, match="tokens per minute"):
        await rate_limit_check(limits, tokens=(100,), members=("a",), free_if_cached=entry)
    await redis.set(entry, b"{}", ex=60)
    admitted = await rate_limit_check(limits, tokens=(100,), members=("b",), free_if_cached=entry)
    assert admitted is not None and admitted.tokens == (0,) and admitted.keys == limits[0].keys
    assert admitted.headers["x-ratelimit-remaining-tokens"] == "50"
    await redis.delete(entry, *limits[0].keys)
