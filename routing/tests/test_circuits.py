"""Faults cost one short timeout, then fail fast: circuits for PostgreSQL, Redis and the Celery broker."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from redis import Redis

from config.circuit import Circuit
from routing.models import BatchItem, BatchJob, GatewayRequest
from routing.tests.live import LiveGateway, live_database_url
from routing.tests.proxy import TcpProxy, url_via

HELLO = [{"role": "user", "content": "What is the capital of France?"}]
BODY: dict[str, Any] = {"model": "gpt-4o-mini", "messages": HELLO}
REDIS_TARGET = ("127.0.0.1", 6379)
REDIS_DB = 7  # its own: 9 is test_provider_faults', 8 test_bad_key_slowdown's, 15 the suite's
BROKER_DB = 6


def _timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _post(
    gateway: LiveGateway, key: str, path: str = "/v1/chat/completions", body: Any = BODY
) -> httpx.Response:
    return httpx.post(gateway.url + path, headers={"Authorization": f"Bearer {key}"}, json=body, timeout=60)


def _poll(check: Any, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"not recovered within {timeout_s} s")


# --------------------------------------------------------------------------------------------- the circuit


def test_a_circuit_refuses_after_a_failure_and_lets_one_probe_through_per_interval(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("config.circuit.time.monotonic", lambda: now[0])
    circuit = Circuit("dependency", open_s=2.0)
    assert circuit.allow() and circuit.allow()  # closed: everything passes
    circuit.failed()
    assert circuit.is_open and not circuit.allow()
    now[0] += 2.0
    assert circuit.allow()  # the probe
    assert not circuit.allow()  # everyone else waits for the probe's outcome
    circuit.failed()  # the probe failed: another interval
    now[0] += 1.0
    assert not circuit.allow()
    now[0] += 1.0
    assert circuit.allow()
    circuit.succeeded()
    assert not circuit.is_open and circuit.allow() and circuit.allow()


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
    """The production pool wait (10 s): without a circuit every request during an outage would pay it."""
    _, url = pg_proxy
    env = {
        "DB_POOL_TIMEOUT_S": "10",
        "ROUTER_JOURNAL_DIR": tempfile.mkdtemp(prefix="router-journal-"),
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "4",
        "DB_ASYNC_POOL_MAX": "4",
    }
    output = Path(tempfile.gettempdir()) / "circuit_pg_gateway.log"
    with LiveGateway(database_url=url, upstream=fake_upstream, env=env, output=output) as gateway:
        yield gateway


@pytest.fixture
def database(pg_proxy, transactional_db, catalog, fake_upstream) -> Iterator[TcpProxy]:
    proxy, _ = pg_proxy
    proxy.start()
    yield proxy
    proxy.start()


@pytest.mark.e2e
def test_with_postgresql_down_v1_and_ready_answer_503_within_about_a_second(database, pg_gateway, alice_key):
    _poll(lambda: _post(pg_gateway, alice_key).status_code == 200, timeout_s=15)
    database.stop()
    # The pools' reconnects fail at once and open the circuit; then nothing waits for a pool.
    time.sleep(0.5)
    timings = []
    for _ in range(5):
        response, took = _timed(lambda: _post(pg_gateway, alice_key))
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "database_unavailable"
        timings.append(took)
    ready, ready_took = _timed(lambda: httpx.get(pg_gateway.url + "/ready", timeout=30))
    assert ready.status_code == 503 and ready.json()["checks"]["database"] is False
    assert max(timings) < 2.5, timings  # never the pool's 10 s
    assert sorted(timings)[2] < 1.0, timings
    assert ready_took < 3.0
    database.start()
    assert _poll(lambda: _post(pg_gateway, alice_key).status_code == 200, timeout_s=10) < 10
    assert httpx.get(pg_gateway.url + "/ready", timeout=30).status_code == 200


# --------------------------------------------------------------------------------------------- Redis


@pytest.fixture(scope="module")
def redis_proxy() -> Iterator[TcpProxy]:
    with TcpProxy(*REDIS_TARGET) as proxy:
        yield proxy


def _redis_gateway(redis_proxy: TcpProxy, fake_upstream: Any, **env: str) -> LiveGateway:
    return LiveGateway(
        database_url=live_database_url(),
        upstream=fake_upstream,
        env={
            "REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/{REDIS_DB}",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_proxy.port}/{BROKER_DB}",
            **env,
        },
        output=Path(tempfile.gettempdir()) / "circuit_redis_gateway.log",
    )


@pytest.fixture(scope="module")
def redis_gateway(redis_proxy, django_db_setup, django_db_blocker, fake_upstream) -> Iterator[LiveGateway]:
    with django_db_blocker.unblock(), _redis_gateway(redis_proxy, fake_upstream) as gateway:
        yield gateway


@pytest.fixture
def redis(redis_proxy, transactional_db, catalog, fake_upstream) -> Iterator[TcpProxy]:
    redis_proxy.start()
    for db in (REDIS_DB, BROKER_DB):
        Redis(*REDIS_TARGET, db=db).flushdb()
    yield redis_proxy
    redis_proxy.start()


@pytest.mark.e2e
def test_with_redis_hung_a_completion_pays_one_short_timeout_then_skips_redis(
    redis, redis_gateway, alice_key
):
    assert _post(redis_gateway, alice_key).status_code == 200
    redis.hang()
    timings = []
    for index in range(8):
        response, took = _timed(lambda i=index: _post(redis_gateway, alice_key, body={**BODY, "seed": i}))
        assert response.status_code == 200, response.text
        assert response.headers["X-Router-Cache"] == "bypass"
        timings.append(took)
    # Before the circuit each call paid the 0.5 s socket timeout once per Redis command (1.8 s a call).
    assert timings[0] < 1.5, timings
    assert sorted(timings)[len(timings) // 2] < 0.3, timings
    assert sum(timings) < 4.0, timings
    redis.start()

    def cache_serves() -> bool:
        body = {**BODY, "temperature": 0, "seed": 99}
        return _post(redis_gateway, alice_key, body=body).headers["X-Router-Cache"] == "hit"

    assert _poll(cache_serves, timeout_s=15) < 15  # a probe closed the circuit by itself


@pytest.mark.e2e
def test_a_batch_posted_while_the_broker_hangs_is_accepted_at_once_and_runs_once_it_is_back(
    redis, redis_gateway, alice_key, worker_factory
):
    redis.hang()
    body = {"model": "gpt-4o-mini", "requests": [{"messages": HELLO}, {"messages": HELLO}], "wait": True}
    response, took = _timed(lambda: _post(redis_gateway, alice_key, "/v1/chat/batch", body))
    assert response.status_code == 202, response.text  # accepted: a retry would pay twice
    assert took < 8.0, took  # one publish timeout, never the 15 s it blocked before
    batch_id = response.json()["batch_id"]
    assert BatchJob.objects.filter(pk=batch_id).count() == 1
    items = BatchItem.objects.filter(batch_id=batch_id)
    assert items.count() == 2 and set(items.values_list("status", flat=True)) == {"pending"}
    # A second batch while the circuit is open is refused by nothing and accepted at once.
    again, again_took = _timed(lambda: _post(redis_gateway, alice_key, "/v1/chat/batch", body))
    assert again.status_code == 202 and again_took < 1.5, again_took
    assert GatewayRequest.objects.count() == 0  # nothing ran yet, nothing charged
    redis.start()
    # The broker is back: the periodic resume (Celery beat in production) queues the waiting items.
    worker_factory(concurrency=2)
    from routing.services.batch_lanes import batches_resume

    batches_resume()
    _poll(lambda: BatchJob.objects.filter(status="completed").count() == 2, timeout_s=60)
    assert GatewayRequest.objects.filter(status="success").count() == 4  # each item ran once


@pytest.mark.e2e
def test_a_comparison_the_broker_cannot_take_is_a_503_that_never_runs_later(redis, redis_gateway, alice_key):
    redis.stop()
    body = {"models": ["gpt-4o-mini", "claude-haiku-3.5"], "messages": HELLO}
    response = _post(redis_gateway, alice_key, "/v1/chat/compare", body)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "queue_unavailable"
    from routing.models import Comparison, ComparisonResult

    comparison = Comparison.objects.get()
    assert comparison.status == "completed"
    assert set(ComparisonResult.objects.values_list("status", flat=True)) == {"error"}


@pytest.mark.e2e
def test_rate_limits_fail_open_by_default_and_closed_when_configured(
    redis, redis_proxy, redis_gateway, fake_upstream, alice_key, django_db_blocker
):
    from accounts.models import ApiKey

    ApiKey.objects.update(rate_limit_rpm=100)
    redis.stop()
    assert _post(redis_gateway, alice_key).status_code == 200  # fail open: budgets still hold the money
    with _redis_gateway(redis_proxy, fake_upstream, ROUTER_RATE_LIMIT_FAIL_CLOSED="true") as closed:
        refused = _post(closed, alice_key)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "rate_limit_unavailable"
    assert refused.headers["Retry-After"] == "1"
