"""Per-key rate limits: the 61st request in a minute at 60 RPM gets 429 with Retry-After, across processes; only
admitted requests count, and a fan-out of N counts N, all or nothing. (Sliding windows, tokens per minute, teams
and the x-ratelimit headers: test_rate_limit_windows.py.)"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from django.test import override_settings

from accounts.authentication import Principal
from accounts.services import api_key_issue
from config.api_errors import RateLimited
from config.redis_clients import get_redis
from routing.models import Comparison, GatewayRequest
from routing.ratelimit import rate_limit_check, rate_limit_release, rate_limits_of
from routing.tests.live import LiveGateway, live_database_url
from routing.tests.rate_windows import requests_counted

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


def _post(gateway: LiveGateway, client: httpx.Client, key: str) -> httpx.Response:
    return client.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 5, "cache": False},
    )


@pytest.mark.e2e
def test_the_61st_request_in_a_minute_at_60_rpm_gets_429_across_two_processes(gateways, fake_upstream, alice):
    _, key = api_key_issue(user=alice, name="limited", rate_limit_rpm=60)
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
    with httpx.Client(timeout=30) as client:
        statuses = [_post(gateways[i % 2], client, limited).status_code for i in range(3)]
        assert statuses == [200, 200, 429]
        assert [_post(gateways[i % 2], client, other).status_code for i in range(5)] == [200] * 5


@pytest.mark.e2e
def test_requests_refused_at_5_rpm_are_not_counted_so_the_window_stays_at_5(gateways, fake_upstream, alice):
    """A client retrying its 429 in a loop must not keep pushing its own count up."""
    api_key, key = api_key_issue(user=alice, name="limited", rate_limit_rpm=5)
    with httpx.Client(timeout=30) as client:
        statuses = [_post(gateways[i % 2], client, key).status_code for i in range(7)]
    assert statuses == [200] * 5 + [429, 429]
    assert requests_counted(api_key.pk) == 5
    assert len(fake_upstream.requests()) == 5


@pytest.mark.e2e
def test_a_comparison_of_3_models_under_2_rpm_is_refused_whole_and_counts_nothing(
    gateways, fake_upstream, alice
):
    api_key, key = api_key_issue(user=alice, name="limited", rate_limit_rpm=2)
    with httpx.Client(timeout=30) as client:
        refused = client.post(
            gateways[0].url + "/v1/chat/compare",
            headers={"Authorization": f"Bearer {key}"},
            json={"messages": HELLO, "models": ["gpt-4o-mini", "deepseek-chat", "claude-haiku-3.5"]},
        )
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert int(refused.headers["Retry-After"]) >= 1
        assert requests_counted(api_key.pk) == 0
        assert [_post(gateways[i % 2], client, key).status_code for i in range(2)] == [200, 200]
    assert not Comparison.objects.exists()
    assert len(fake_upstream.requests()) == 2


def _principal(key_id: int, rpm: int | None) -> Principal:
    return Principal(
        user_id=1,
        key_id=key_id,
        team_id=None,
        username="u",
        is_staff=False,
        rate_limit_rpm=rpm,
        rate_limit_tpm=None,
        cache_group="",
    )


async def test_a_key_without_its_own_limit_gets_the_global_default():
    principal = _principal(key_id=10_000_000 + int(time.time() * 1000) % 1_000_000, rpm=None)
    with override_settings(ROUTER_RATE_LIMIT_RPM=3):
        for _ in range(3):
            await rate_limit_check(rate_limits_of(principal))
        with pytest.raises(RateLimited) as refused:
            await rate_limit_check(rate_limits_of(principal))
    assert refused.value.status == 429 and "Retry-After" in refused.value.headers


async def test_the_keys_own_limit_overrides_the_global_default():
    principal = _principal(key_id=20_000_000 + int(time.time() * 1000) % 1_000_000, rpm=5)
    with override_settings(ROUTER_RATE_LIMIT_RPM=1):
        for _ in range(5):
            await rate_limit_check(rate_limits_of(principal))
        with pytest.raises(RateLimited):
            await rate_limit_check(rate_limits_of(principal))


async def test_without_any_limit_nothing_is_counted():
    principal = _principal(key_id=30_000_000 + int(time.time() * 1000) % 1_000_000, rpm=None)
    with override_settings(ROUTER_RATE_LIMIT_RPM=None):
        for _ in range(100):
            await rate_limit_check(rate_limits_of(principal))
    redis = get_redis()
    assert redis is not None
    assert not await redis.keys("router:rl:*")


def _unique_key_id(base: int) -> int:
    return base + int(time.time() * 1000) % 1_000_000


async def test_a_request_refused_by_the_limit_leaves_the_count_where_it_was():
    principal = _principal(key_id=_unique_key_id(40_000_000), rpm=5)
    for _ in range(5):
        await rate_limit_check(rate_limits_of(principal))
    for _ in range(2):
        with pytest.raises(RateLimited):
            await rate_limit_check(rate_limits_of(principal))
    assert await asyncio.to_thread(requests_counted, principal.key_id) == 5


async def test_n_requests_at_once_are_admitted_together_or_not_at_all():
    principal = _principal(key_id=_unique_key_id(50_000_000), rpm=5)
    assert await rate_limit_check(rate_limits_of(principal), requests=3) is not None
    with pytest.raises(RateLimited) as refused:
        await rate_limit_check(rate_limits_of(principal), requests=3)  # 3 + 3 > 5: none of them
    assert refused.value.status == 429 and "Retry-After" in refused.value.headers
    assert await asyncio.to_thread(requests_counted, principal.key_id) == 3
    assert await rate_limit_check(rate_limits_of(principal), requests=2) is not None
    assert await asyncio.to_thread(requests_counted, principal.key_id) == 5


async def test_more_requests_at_once_than_the_limit_are_refused_and_say_so():
    principal = _principal(key_id=_unique_key_id(60_000_000), rpm=5)
    with pytest.raises(RateLimited) as refused:
        await rate_limit_check(rate_limits_of(principal), requests=20)
    assert "smaller parts" in refused.value.message
    assert await asyncio.to_thread(requests_counted, principal.key_id) == 0


async def test_concurrent_fan_outs_never_admit_more_than_the_limit():
    principal = _principal(key_id=_unique_key_id(70_000_000), rpm=10)
    outcomes = await asyncio.gather(
        *(rate_limit_check(rate_limits_of(principal), requests=3) for _ in range(8)), return_exceptions=True
    )
    assert sum(1 for o in outcomes if not isinstance(o, BaseException)) == 3
    assert all(isinstance(o, RateLimited) for o in outcomes if isinstance(o, BaseException))
    assert await asyncio.to_thread(requests_counted, principal.key_id) == 9


async def test_released_requests_are_given_back_to_the_window():
    principal = _principal(key_id=_unique_key_id(80_000_000), rpm=5)
    admitted = await rate_limit_check(rate_limits_of(principal), requests=4)
    await rate_limit_release(admitted)
    assert await asyncio.to_thread(requests_counted, principal.key_id) == 0
    assert await rate_limit_check(rate_limits_of(principal), requests=5) is not None
