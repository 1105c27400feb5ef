"""Repeated bad API keys from one address are slowed down (429), in every web process; valid keys never are,
from that address or any other."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core.cache.backends.locmem import LocMemCache
from redis import Redis
from rest_framework.test import APIClient

from accounts.models import ApiKey
from routing.tests.live import LiveGateway, live_database_url

ATTACKER = "10.0.0.66"
SOMEONE_ELSE = "10.0.0.7"
HELLO = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(autouse=True)
def own_cache(request, settings) -> None:
    """The counting logic on a cache of this process's own: Redis db 15 is flushed at the start of every test
    by every run on the machine. The live test below shows the counts shared through Redis."""
    if "two_processes" not in request.fixturenames:
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": request.node.name,
            }
        }


@pytest.fixture
def limit(settings) -> int:
    settings.ROUTER_AUTH_FAILURES_PER_MINUTE = 3
    return 3


def _get(key: str | None, ip: str) -> Any:
    client = APIClient()
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client.get("/v1/budget", REMOTE_ADDR=ip)


def _guess(n: int) -> str:
    return f"amr_guess{n:036d}"


def test_bad_keys_up_to_the_limit_get_401_and_the_next_attempt_429_with_retry_after(db, limit, alice_key):
    for n in range(limit):
        assert _get(_guess(n), ATTACKER).status_code == 401
    refused = _get(_guess(99), ATTACKER)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert refused.json()["error"]["code"] == "too_many_failed_auth"
    assert 1 <= int(refused["Retry-After"]) <= 61


def test_a_valid_key_is_served_from_an_address_past_20_bad_keys_and_bad_ones_stay_slowed_down(
    db, settings, alice_key
):
    """Callers behind one NAT share its address: one of them guessing must not lock the others out."""
    settings.ROUTER_AUTH_FAILURES_PER_MINUTE = 20  # the default
    for n in range(20):
        assert _get(_guess(n), ATTACKER).status_code == 401
    assert _get(_guess(20), ATTACKER).status_code == 429
    for _ in range(3):
        assert _get(alice_key, ATTACKER).status_code == 200
    still = _get(_guess(21), ATTACKER)  # a served valid key does not wipe the address's failures
    assert still.status_code == 429 and still.json()["error"]["code"] == "too_many_failed_auth"
    assert int(still["Retry-After"]) >= 1


def test_past_the_limit_a_key_already_known_bad_is_refused_without_a_lookup(
    db, limit, settings, django_assert_num_queries
):
    settings.ROUTER_KEY_CACHE_S = 60  # the key cache remembers bad hashes too
    with django_assert_num_queries(1):
        for _ in range(limit):
            assert _get(_guess(0), ATTACKER).status_code == 401
    with django_assert_num_queries(0):
        assert _get(_guess(0), ATTACKER).status_code == 429


def test_past_the_limit_a_new_bad_key_costs_at_most_one_indexed_lookup(
    db, limit, django_assert_max_num_queries
):
    """The price of never refusing a valid key: a key not seen before is looked up to tell, and no more."""
    for n in range(limit):
        _get(_guess(n), ATTACKER)
    with django_assert_max_num_queries(1):
        assert _get(_guess(99), ATTACKER).status_code == 429


def test_other_addresses_with_good_keys_are_unaffected(db, limit, alice_key):
    for n in range(limit + 5):
        _get(_guess(n), ATTACKER)
    assert _get(alice_key, SOMEONE_ELSE).status_code == 200


def test_good_keys_do_not_count_and_a_missing_key_is_not_a_guess(db, limit, alice_key):
    for _ in range(limit * 2):
        assert _get(alice_key, ATTACKER).status_code == 200
        assert _get(None, ATTACKER).status_code == 401
    assert _get(_guess(1), ATTACKER).status_code == 401


def test_the_slow_down_ends_with_the_minute(db, limit, monkeypatch):
    for n in range(limit):
        _get(_guess(n), ATTACKER)
    assert _get(_guess(limit), ATTACKER).status_code == 429
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    assert _get(_guess(limit + 1), ATTACKER).status_code == 401


def test_a_revoked_key_counts_as_a_failure(db, limit, alice, alice_key):
    ApiKey.objects.filter(user=alice).update(revoked_at="2025-01-01T00:00:00Z")
    for _ in range(limit):
        assert _get(alice_key, ATTACKER).status_code == 401
    assert _get(alice_key, ATTACKER).status_code == 429


def test_with_the_cache_down_bad_keys_still_get_401_and_nobody_is_slowed_down(
    db, limit, alice_key, monkeypatch
):
    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("redis down")

    for name in ("get", "add", "incr"):
        monkeypatch.setattr(LocMemCache, name, down)
    for n in range(limit * 2):
        assert _get(_guess(n), ATTACKER).status_code == 401
    assert _get(alice_key, ATTACKER).status_code == 200


def test_zero_switches_the_slow_down_off(db, settings, alice_key):
    settings.ROUTER_AUTH_FAILURES_PER_MINUTE = 0
    for n in range(30):
        assert _get(_guess(n), ATTACKER).status_code == 401


# --------------------------------------------------------------------------------------------- live


REDIS_DB = 8  # its own counters: db 15 is flushed at the start of every test, by every run on the machine


@pytest.fixture(scope="module")
def two_processes(django_db_setup, django_db_blocker, fake_upstream) -> Iterator[tuple[LiveGateway, ...]]:
    with django_db_blocker.unblock():
        url = live_database_url()
    env = {
        "ROUTER_AUTH_FAILURES_PER_MINUTE": "5",
        "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "4",
        "DB_ASYNC_POOL_MAX": "4",
    }
    with (
        LiveGateway(database_url=url, upstream=fake_upstream, env=env) as first,
        LiveGateway(database_url=url, upstream=fake_upstream, env=env) as second,
    ):
        yield first, second


@pytest.fixture
def counters(e2e) -> Iterator[None]:
    Redis("127.0.0.1", 6379, db=REDIS_DB).flushdb()
    yield
    Redis("127.0.0.1", 6379, db=REDIS_DB).flushdb()


def _from(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


@pytest.mark.e2e
def test_failures_on_one_web_process_slow_the_address_down_on_every_other_but_never_its_valid_keys(
    two_processes, counters, alice_key, fake_upstream
):
    first, second = two_processes
    body = {"model": "gpt-4o-mini", "messages": HELLO, "cache": False}  # every served call reaches upstream
    with _from("127.0.0.2") as shared_address, _from("127.0.0.1") as someone:
        for n in range(5):
            guess = shared_address.post(
                first.url + "/v1/chat/completions", headers={"X-API-Key": _guess(n)}, json=body
            )
            assert guess.status_code == 401
        blocked = shared_address.post(
            second.url + "/v1/chat/completions", headers={"X-API-Key": _guess(5)}, json=body
        )
        assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "too_many_failed_auth"
        assert int(blocked.headers["Retry-After"]) >= 1
        models = shared_address.get(second.url + "/v1/models", headers={"X-API-Key": _guess(6)})
        assert models.status_code == 429
        neighbour = shared_address.post(
            second.url + "/v1/chat/completions", headers={"X-API-Key": alice_key}, json=body
        )
        assert neighbour.status_code == 200
        assert (
            shared_address.get(second.url + "/v1/models", headers={"X-API-Key": alice_key}).status_code == 200
        )
        served = someone.post(
            second.url + "/v1/chat/completions", headers={"X-API-Key": alice_key}, json=body
        )
        assert served.status_code == 200
    assert len(fake_upstream.requests()) == 2
