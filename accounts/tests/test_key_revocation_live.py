"""A revoked or expired key stops working within seconds on a live gateway, despite the in-process key cache."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import api_key_issue, api_key_revoke
from routing.tests.live import LiveGateway, live_database_url

pytestmark = pytest.mark.e2e
KEY_CACHE_S = 2.0
HELLO = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def caching_gateway(django_db_setup, django_db_blocker, fake_upstream) -> Iterator[LiveGateway]:
    """A gateway that remembers keys for KEY_CACHE_S seconds, as production does (tests default to 0)."""
    with django_db_blocker.unblock():
        url = live_database_url()
    env = {
        "ROUTER_KEY_CACHE_S": str(KEY_CACHE_S),
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "4",
        "DB_ASYNC_POOL_MAX": "4",
    }
    with LiveGateway(database_url=url, upstream=fake_upstream, env=env) as gateway:
        yield gateway


def _models(gateway: LiveGateway, key: str) -> int:
    return httpx.get(gateway.url + "/v1/models", headers={"X-API-Key": key}, timeout=10).status_code


def _completion(gateway: LiveGateway, key: str) -> int:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"X-API-Key": key},
        json={"model": "gpt-4o-mini", "messages": HELLO},
        timeout=10,
    )
    return response.status_code


def _seconds_until_refused(call: Callable[[], int], limit_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit_s + 2:
        if call() == 401:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"still accepted after {limit_s + 2} s")


@pytest.mark.parametrize("call", [_models, _completion], ids=["drf-view", "async-completions"])
def test_a_revoked_key_is_refused_within_three_seconds(e2e, caching_gateway, alice, call):
    key, raw = api_key_issue(user=alice, name="soon-revoked")
    for _ in range(3):
        assert call(caching_gateway, raw) == 200  # remembered by the process now
    api_key_revoke(key=key)
    assert _seconds_until_refused(lambda: call(caching_gateway, raw), 3.0) <= 3.0


def test_an_expired_key_is_refused_within_three_seconds_of_expiring(e2e, caching_gateway, alice):
    key, raw = api_key_issue(user=alice, name="short-lived")
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() + timedelta(seconds=1))
    assert _models(caching_gateway, raw) == 200
    time.sleep(1)
    assert _seconds_until_refused(lambda: _models(caching_gateway, raw), 3.0) <= 3.0


def test_a_deactivated_user_is_refused_within_three_seconds(e2e, caching_gateway, bob, bob_key):
    assert _models(caching_gateway, bob_key) == 200
    bob.is_active = False
    bob.save(update_fields=["is_active"])
    assert _seconds_until_refused(lambda: _models(caching_gateway, bob_key), 3.0) <= 3.0
