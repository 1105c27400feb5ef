"""Dependencies fail: PostgreSQL or Redis cut off behind a TCP proxy while a live gateway keeps serving."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from redis import Redis

from budgets.limits import budget_limit_set
from budgets.models import Budget, Reservation
from routing.models import GatewayRequest
from routing.tests.live import LiveGateway, live_database_url
from routing.tests.proxy import TcpProxy, url_via

pytestmark = pytest.mark.e2e
HELLO = [{"role": "user", "content": "What is the capital of France?"}]
BODY: dict[str, Any] = {"model": "gpt-4o-mini", "messages": HELLO}
REDIS_TARGET = ("127.0.0.1", 6379)
# A database of its own: the suite's db 15 is flushed at the start of every test, by every run on the machine.
REDIS_DB = 10
# Short waits for a connection from a pool, so a request during an outage fails in seconds, not ten.
JOURNAL_DIR = Path(tempfile.mkdtemp(prefix="router-journal-"))
GATEWAY_ENV = {
    "ROUTER_UPSTREAM_TIMEOUT_S": "2",
    # Outcomes the database can't take go here; the gateway retries them every half second.
    "ROUTER_JOURNAL_DIR": str(JOURNAL_DIR),
    "ROUTER_JOURNAL_RETRY_S": "0.5",
    "DB_POOL_TIMEOUT_S": "2",
    # PostgreSQL's connections are shared with every gateway and test run on the machine.
    "DB_POOL_MIN": "1",
    "DB_POOL_MAX": "4",
    "DB_ASYNC_POOL_MAX": "4",
}


def _post(gateway: LiveGateway, key: str, body: dict[str, Any] = BODY, timeout: float = 30) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json=body,
        timeout=timeout,
    )


def _get(gateway: LiveGateway, path: str, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(gateway.url + path, headers=headers, timeout=30)


def _poll(check: Callable[[], bool], timeout_s: float) -> float:
    """Seconds until check() held; fails the test after timeout_s."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"not recovered within {timeout_s} s")


def _assert_envelope_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "database_unavailable"
    assert error["type"] == "service_unavailable"
    assert "Traceback" not in response.text and "psycopg" not in response.text


# --------------------------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="module")
def pg_proxy(django_db_setup, django_db_blocker) -> Iterator[tuple[TcpProxy, str]]:
    with django_db_blocker.unblock():
        url = live_database_url()
    parts = urlsplit(url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        yield proxy, url_via(url, proxy.port)


@pytest.fixture(scope="module")
def pg_gateway(pg_proxy, fake_upstream) -> Iterator[LiveGateway]:
    _, url = pg_proxy
    with LiveGateway(
        database_url=url,
        upstream=fake_upstream,
        env=GATEWAY_ENV,
        output=Path(tempfile.gettempdir()) / "pg_gateway.log",
    ) as gateway:
        yield gateway


@pytest.fixture
def database(pg_proxy, transactional_db, catalog, fake_upstream) -> Iterator[TcpProxy]:
    proxy, _ = pg_proxy
    proxy.start()
    fake_upstream.clear()
    yield proxy
    proxy.start()  # the next test (and the flush after this one) goes through the live database


def test_with_postgresql_down_v1_answers_503_in_the_envelope_and_ready_says_503(
    database, pg_gateway, alice_key
):
    # the pools hold live connections now (after any earlier outage: recovered)
    _poll(lambda: _post(pg_gateway, alice_key).status_code == 200, timeout_s=10)
    database.stop()
    _assert_envelope_503(_post(pg_gateway, alice_key))
    _assert_envelope_503(_post(pg_gateway, alice_key, {**BODY, "stream": True}))
    _assert_envelope_503(_get(pg_gateway, "/v1/models", alice_key))
    _assert_envelope_503(_get(pg_gateway, "/v1/budget", alice_key))
    ready = _get(pg_gateway, "/ready")
    assert ready.status_code == 503 and ready.json()["checks"]["database"] is False
    assert _get(pg_gateway, "/health").status_code == 200  # alive, just not ready


def test_when_postgresql_comes_back_the_same_process_recovers_by_itself(
    database, pg_gateway, alice_key, fake_upstream
):
    pid = pg_gateway.process.pid if pg_gateway.process else None
    _poll(lambda: _post(pg_gateway, alice_key).status_code == 200, timeout_s=10)  # after any earlier cut
    database.stop()
    assert _post(pg_gateway, alice_key).status_code == 503
    database.start()
    took = _poll(lambda: _post(pg_gateway, alice_key).status_code == 200, timeout_s=10)
    assert took < 10
    assert _get(pg_gateway, "/v1/models", alice_key).status_code == 200
    assert _get(pg_gateway, "/ready").status_code == 200
    assert pg_gateway.process is not None and pg_gateway.process.pid == pid  # no restart
    # the outage left no hold behind and no answer unlogged
    assert Reservation.objects.filter(status="open").count() == 0
    assert GatewayRequest.objects.filter(status="success", cached=False).count() == len(
        fake_upstream.requests()
    )


def test_postgresql_dying_while_the_provider_answers_costs_the_client_nothing_and_the_books_nothing(
    database, pg_gateway, alice, alice_key, fake_upstream
):
    """The row is written (pending) with the hold before the call; the outcome, which PostgreSQL can't take
    when the answer arrives, is journaled on disk and written once PostgreSQL is back."""
    _poll(lambda: _post(pg_gateway, alice_key).status_code == 200, timeout_s=10)  # after any earlier cut
    fake_upstream.control(model="gpt-4o-mini", delay_ms=1500)
    result: dict[str, httpx.Response] = {}

    def call() -> None:
        result["response"] = _post(pg_gateway, alice_key, {**BODY, "cache": False})

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.8)  # the row and the hold are in, the provider still thinking
    database.stop()
    thread.join(30)
    response = result["response"]
    assert response.status_code == 200, response.text  # the client got its answer
    assert "fake answer" in response.json()["content"]
    assert list(JOURNAL_DIR.glob("outcomes-*")), "the outcome waits in the journal"
    request_id = response.headers["X-Request-Id"]
    database.start()

    def written() -> bool:
        row = GatewayRequest.objects.filter(pk=request_id).first()
        return row is not None and row.status == "success"

    _poll(written, timeout_s=15)
    row = GatewayRequest.objects.get(pk=request_id)
    answered = json.loads(response.text, parse_float=Decimal)
    assert row.total_cost_usd == answered["usage"]["total_cost_usd"] > 0
    assert row.attempts.count() == 1
    assert not Reservation.objects.filter(status="open").exists()
    _poll(lambda: not list(JOURNAL_DIR.glob("outcomes-*")), timeout_s=10)
    budget = Budget.objects.get(user=alice)
    assert budget.reserved_usd == 0
    assert budget.spent_usd == sum(r.total_cost_usd for r in GatewayRequest.objects.filter(user=alice))


# --------------------------------------------------------------------------------------------- Redis


@pytest.fixture(scope="module")
def redis_proxy() -> Iterator[TcpProxy]:
    with TcpProxy(*REDIS_TARGET) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def redis_gateway(redis_proxy, django_db_setup, django_db_blocker, fake_upstream) -> Iterator[LiveGateway]:
    with django_db_blocker.unblock():
        url = live_database_url()
    env = {**GATEWAY_ENV, "REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/{REDIS_DB}"}
    with LiveGateway(database_url=url, upstream=fake_upstream, env=env) as gateway:
        yield gateway


@pytest.fixture
def redis(redis_proxy, transactional_db, catalog, fake_upstream) -> Iterator[TcpProxy]:
    redis_proxy.start()
    Redis(*REDIS_TARGET, db=REDIS_DB).flushdb()
    fake_upstream.clear()
    yield redis_proxy
    redis_proxy.start()


def test_with_redis_down_completions_still_work_bypassing_the_cache(redis, redis_gateway, alice_key):
    body = {**BODY, "temperature": 0}
    assert _post(redis_gateway, alice_key, body).headers["X-Router-Cache"] == "miss"
    assert _post(redis_gateway, alice_key, body).headers["X-Router-Cache"] == "hit"
    redis.stop()
    plain = _post(redis_gateway, alice_key, body)
    assert plain.status_code == 200, plain.text
    assert plain.headers["X-Router-Cache"] == "bypass" and plain.json()["cached"] is False
    with httpx.stream(
        "POST",
        redis_gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {alice_key}"},
        json={**body, "stream": True},
        timeout=30,
    ) as streamed:
        lines = [line for line in streamed.iter_lines() if line.startswith("data: ")]
    assert streamed.status_code == 200 and streamed.headers["X-Router-Cache"] == "bypass"
    assert lines[-1] == "data: [DONE]" and '"error"' not in lines[-2]
    row = GatewayRequest.objects.get(pk=plain.headers["X-Request-Id"])
    assert row.status == "success" and row.cached is False


def test_with_redis_down_budgets_keep_their_guarantee(redis, redis_gateway, alice, alice_key, fake_upstream):
    budget_limit_set(user_id=alice.pk, limit_usd=0)
    redis.stop()
    refused = _post(redis_gateway, alice_key)
    assert refused.status_code == 402, refused.text
    assert refused.json()["error"]["code"] == "budget_exceeded"
    assert fake_upstream.requests() == []  # refused before any provider was called
    budget_limit_set(user_id=alice.pk, limit_usd=1)
    assert _post(redis_gateway, alice_key).status_code == 200
    budget = Budget.objects.get(user=alice)
    assert budget.reserved_usd == 0
    assert budget.spent_usd == sum(r.total_cost_usd for r in GatewayRequest.objects.filter(user=alice))


def test_with_redis_down_ready_says_503(redis, redis_gateway):
    assert _get(redis_gateway, "/ready").status_code == 200
    redis.stop()
    ready = _get(redis_gateway, "/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": True, "redis": False}


def test_when_redis_comes_back_the_cache_works_again(redis, redis_gateway, alice_key):
    body = {**BODY, "temperature": 0, "seed": 7}
    redis.stop()
    assert _post(redis_gateway, alice_key, body).headers["X-Router-Cache"] == "bypass"
    redis.start()

    def cache_serves() -> bool:
        response = _post(redis_gateway, alice_key, body)
        return response.status_code == 200 and response.headers["X-Router-Cache"] == "hit"

    assert _poll(cache_serves, timeout_s=10) < 10
    assert _get(redis_gateway, "/ready").status_code == 200
