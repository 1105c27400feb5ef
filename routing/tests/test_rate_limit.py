"""Per-key rate limits: the 61st request in a minute at 60 RPM gets 429 with Retry-After, across processes."""

from __future__ import annotations

import time

import httpx
import pytest
from django.test import override_settings

from accounts.authentication import Principal
from accounts.services import api_key_issue
from config.api_errors import RateLimited
from routing.models import GatewayRequest
from routing.ratelimit import rate_limit_check
from routing.redis_client import get_redis
from routing.tests.live import LiveGateway, live_database_url

HELLO = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def two_processes(django_db_setup, django_db_blocker, fake_upstream):
    """Two separate gateway processes (two ports) sharing the database and Redis."""
    with django_db_blocker.unblock():
        url = live_database_url()
    with (
        LiveGateway(database_url=url, upstream=fake_upstream) as first,
        LiveGateway(database_url=url, upstream=fake_upstream) as second,
    ):
        yield first, second


@pytest.fixture
def gateways(transactional_db, catalog, fake_upstream, two_processes):
    fake_upstream.clear()
    yield two_processes
    fake_upstream.clear()


def _fresh_minute(needed_s: float = 15) -> None:
    """Waits for the next minute when fewer than `needed_s` seconds of this one are left (fixed windows)."""
    left = 60 - time.time() % 60
    if left < needed_s:
        time.sleep(left + 0.2)


def _post(gateway: LiveGateway, client: httpx.Client, key: str) -> httpx.Response:
    return client.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 5, "cache": False},
    )


@pytest.mark.e2e
def test_the_61st_request_in_a_minute_at_60_rpm_gets_429_across_two_processes(gateways, fake_upstream, alice):
    _, key = api_key_issue(user=alice, name="limited", rate_limit_rpm=60)
    _fresh_minute()
    with httpx.Client(timeout=30) as client:
        answered = [_post(gateways[i % 2], client, key) for i in range(60)]  # alternating processes
        refused = _post(gateways[0], client, key)
        refused_elsewhere = _post(gateways[1], client, key)

    assert [r.status_code for r in answered] == [200] * 60
    for response in (refused, refused_elsewhere):
        assert response.status_code == 429
        error = response.json()["error"]
        assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
        assert 1 <= int(response.headers["Retry-After"]) <= 61
    # refused before anything else: not sent upstream, nothing reserved, nothing logged
    assert len(fake_upstream.requests()) == 60
    assert GatewayRequest.objects.filter(user=alice).count() == 60


@pytest.mark.e2e
def test_the_limit_is_per_key(gateways, alice):
    _, limited = api_key_issue(user=alice, name="limited", rate_limit_rpm=2)
    _, other = api_key_issue(user=alice, name="other")  # no limit of its own, and no global default
    _fresh_minute()
    with httpx.Client(timeout=30) as client:
        statuses = [_post(gateways[i % 2], client, limited).status_code for i in range(3)]
        assert statuses == [200, 200, 429]
        assert [_post(gateways[i % 2], client, other).status_code for i in range(5)] == [200] * 5


def _principal(key_id: int, rpm: int | None) -> Principal:
    return Principal(
        user_id=1,
        key_id=key_id,
        username="u",
        is_staff=False,
        rate_limit_rpm=rpm,
        rate_limit_tpm=None,
        cache_group="",
    )


async def test_a_key_without_its_own_limit_gets_the_global_default():
    principal = _principal(key_id=10_000_000 + int(time.time() * 1000) % 1_000_000, rpm=None)
    _fresh_minute(needed_s=5)
    with override_settings(ROUTER_RATE_LIMIT_RPM=3):
        for _ in range(3):
            await rate_limit_check(principal)
        with pytest.raises(RateLimited) as refused:
            await rate_limit_check(principal)
    assert refused.value.status == 429 and "Retry-After" in refused.value.headers


async def test_the_keys_own_limit_overrides_the_global_default():
    principal = _principal(key_id=20_000_000 + int(time.time() * 1000) % 1_000_000, rpm=5)
    _fresh_minute(needed_s=5)
    with override_settings(ROUTER_RATE_LIMIT_RPM=1):
        for _ in range(5):
            await rate_limit_check(principal)
        with pytest.raises(RateLimited):
            await rate_limit_check(principal)


async def test_without_any_limit_nothing_is_counted():
    principal = _principal(key_id=30_000_000 + int(time.time() * 1000) % 1_000_000, rpm=None)
    with override_settings(ROUTER_RATE_LIMIT_RPM=None):
        for _ in range(100):
            await rate_limit_check(principal)
    redis = get_redis()
    assert redis is not None
    assert not await redis.keys(f"router:rl:{principal.key_id}:*")
