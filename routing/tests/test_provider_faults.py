"""Providers fail; the router does not: the faults reliability.md lists that test_completions_e2e leaves out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis import Redis

from providers.adapters.base import ProviderError
from routing.models import Attempt, GatewayRequest
from routing.pipeline.call import _backoff
from routing.tests.live import LiveGateway, live_database_url

pytestmark = pytest.mark.e2e
HELLO = [{"role": "user", "content": "What is the capital of France?"}]
# The cooldown gateway keeps its circuit state apart from db 15, which every test run on the machine flushes.
COOLDOWN_REDIS_DB = 9
# PostgreSQL's connections are shared with every gateway and test run on the machine.
SMALL_POOLS = {"DB_POOL_MIN": "1", "DB_POOL_MAX": "4", "DB_ASYNC_POOL_MAX": "4"}


def _post(gateway: Any, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"messages": HELLO, **body},
        timeout=30,
    )


def _statuses(response: httpx.Response) -> list[int | None]:
    body = response.json()
    attempts = body["attempts"] if "attempts" in body else body["error"]["attempts"]
    return [a["status_code"] for a in attempts]


# --------------------------------------------------------------------------------------------- retried


@pytest.mark.parametrize(
    ("model", "status"),
    [
        ("gpt-4o-mini", 502),
        ("gemini-2.5-flash", 503),
        ("deepseek-chat", 502),
        ("claude-3-5-haiku-20241022", 503),
    ],
)
def test_a_502_or_503_is_retried_on_the_same_model_then_succeeds(
    e2e, alice_key, fake_upstream, model, status
):
    fake_upstream.control(model=model, status=status, times=1)
    response = _post(e2e, alice_key, {"model": model})
    assert response.status_code == 200, response.text
    assert _statuses(response) == [status, 200]
    assert Attempt.objects.filter(request_id=response.json()["id"]).count() == 2


def test_a_retry_after_is_honoured_before_retrying(e2e, alice_key, fake_upstream):
    fake_upstream.control(model="gpt-4o-mini", status=429, times=1, retry_after=1)
    started = time.monotonic()
    response = _post(e2e, alice_key, {"model": "gpt-4o-mini"})
    assert response.status_code == 200 and _statuses(response) == [429, 200]
    assert time.monotonic() - started >= 1.0


def test_a_retry_after_longer_than_the_cap_moves_on_to_the_next_candidate_at_once(
    e2e, alice_key, fake_upstream
):
    fake_upstream.control(model="gpt-4o-mini", status=429, retry_after=60)  # the session gateway caps at 5 s
    started = time.monotonic()
    response = _post(e2e, alice_key, {"model": "gpt-4o-mini", "fallbacks": ["deepseek-chat"]})
    assert response.status_code == 200
    assert response.json()["model"] == "deepseek-chat"
    assert _statuses(response) == [429, 200]
    assert time.monotonic() - started < 5


def test_backoff_grows_exponentially_with_jitter_and_a_cap(settings):
    settings.ROUTER_RETRY_BASE_S = 1.0
    settings.ROUTER_RETRY_MAX_S = 8.0
    error = ProviderError("server error", status=500, retryable=True)
    for retry_number, base in enumerate([1.0, 2.0, 4.0]):
        delays = {_backoff(error, retry_number) for _ in range(200)}
        assert all(0.5 * base <= d <= 1.5 * base for d in delays)
        assert len(delays) > 100  # jittered, so clients retrying together spread out
    assert max(_backoff(error, 10) for _ in range(50)) <= 8.0
    assert _backoff(ProviderError("slow down", status=429, retryable=True, retry_after_s=3), 0) == 3


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_with_a_nul_character_is_served_logged_and_charged(e2e, alice_key, fake_upstream, stream):
    """PostgreSQL stores no NUL: the log keeps a replacement character instead of failing after the call."""
    fake_upstream.control(model="gpt-4o-mini", answer="before\x00after")
    response = _post(e2e, alice_key, {"model": "gpt-4o-mini", "stream": stream})
    assert response.status_code == 200
    assert "before\\u0000after" in response.text  # the client gets the answer as the provider gave it
    row = GatewayRequest.objects.get(pk=response.headers["X-Request-Id"])
    assert row.status == "success" and row.response_text == "before\ufffdafter" and row.total_cost_usd > 0


# --------------------------------------------------------------------------------------------- refused


@pytest.fixture(scope="module")
def refusing_gateway(django_db_setup, django_db_blocker, fake_upstream) -> Iterator[LiveGateway]:
    """Anthropic's base URL points at a port where nothing listens: every connection is refused."""
    with django_db_blocker.unblock():
        url = live_database_url()
    env = {"ANTHROPIC_BASE_URL": "http://127.0.0.1:1", "ROUTER_UPSTREAM_TIMEOUT_S": "2", **SMALL_POOLS}
    with LiveGateway(database_url=url, upstream=fake_upstream, env=env) as gateway:
        yield gateway


def test_a_refused_connection_is_retried_then_falls_back(e2e, refusing_gateway, alice_key, fake_upstream):
    response = _post(
        refusing_gateway, alice_key, {"model": "claude-sonnet-4.5", "fallbacks": ["gpt-4o-mini"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "gpt-4o-mini"
    attempts = response.json()["attempts"]
    assert [(a["provider"], a["status"]) for a in attempts] == [
        ("anthropic", "error"),
        ("anthropic", "error"),
        ("openai", "success"),
    ]
    assert "ConnectError" in attempts[0]["message"]
    assert [r["model"] for r in fake_upstream.requests()] == ["gpt-4o-mini"]


def test_a_provider_that_refuses_every_connection_gives_one_502_listing_every_attempt(
    e2e, refusing_gateway, alice_key
):
    response = _post(refusing_gateway, alice_key, {"model": "claude-sonnet-4.5"})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "upstream_error"
    assert [(a["provider"], a["status_code"]) for a in error["attempts"]] == [("anthropic", None)] * 3
    row = GatewayRequest.objects.get()
    assert row.http_status == 502 and row.attempts.count() == 3 and row.total_cost_usd == 0


# --------------------------------------------------------------------------------------------- not retried


@pytest.mark.parametrize(
    ("status", "code"),
    [(401, "upstream_auth_failed"), (403, "upstream_auth_failed"), (404, "upstream_not_found")],
)
def test_a_provider_401_403_or_404_is_not_retried_and_says_what_went_wrong(
    e2e, alice_key, fake_upstream, status, code
):
    fake_upstream.control(model="gpt-4o-mini", status=status)
    response = _post(e2e, alice_key, {"model": "gpt-4o-mini", "fallbacks": ["gpt-4o"]})
    assert len(fake_upstream.requests()) == 1  # neither retried nor sent to the fallback
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "upstream_error" and error["code"] == code
    assert f"({status})" in error["message"] and "openai" in error["message"]
    assert [(a["model"], a["status_code"]) for a in error["attempts"]] == [("gpt-4o-mini", status)]
    row = GatewayRequest.objects.get()
    assert row.error_code == code and row.total_cost_usd == 0


# --------------------------------------------------------------------------------------------- cooldown


@pytest.fixture(scope="module")
def cooldown_gateway(django_db_setup, django_db_blocker, fake_upstream) -> Iterator[LiveGateway]:
    with django_db_blocker.unblock():
        url = live_database_url()
    env = {
        "ROUTER_COOLDOWN_FAILURES": "2",
        "ROUTER_COOLDOWN_S": "2",
        "ROUTER_UPSTREAM_TIMEOUT_S": "2",
        "REDIS_URL": f"redis://127.0.0.1:6379/{COOLDOWN_REDIS_DB}",
        **SMALL_POOLS,
    }
    with LiveGateway(database_url=url, upstream=fake_upstream, env=env) as gateway:
        yield gateway


@pytest.fixture
def circuits(e2e) -> Iterator[Redis]:
    client = Redis("127.0.0.1", 6379, db=COOLDOWN_REDIS_DB)
    client.flushdb()
    yield client
    client.flushdb()


def _google_requests(fake_upstream: Any) -> int:
    return sum(1 for r in fake_upstream.requests() if r["format"] == "gemini")


def test_a_failing_provider_is_put_in_cooldown_skipped_by_optimized_modes_and_one_probe_closes_it(
    cooldown_gateway, circuits, alice_key, fake_upstream
):
    auto = {"model": "auto", "cache": False}
    assert _post(cooldown_gateway, alice_key, auto).json()["provider"] == "google"  # the cheapest

    _open_google_circuit(cooldown_gateway, alice_key, fake_upstream, circuits)

    for optimized in (auto, {"mode": "cost-optimized", "cache": False}, {"mode": "latency-optimized"}):
        skipping = _post(cooldown_gateway, alice_key, optimized)
        assert skipping.status_code == 200 and skipping.json()["provider"] != "google", optimized
    assert _google_requests(fake_upstream) == 0

    time.sleep(2.2)  # the cooldown runs out: the next optimized request is the probe
    assert not circuits.exists("router:cooldown:open:google")
    probe = _post(cooldown_gateway, alice_key, auto)
    assert probe.status_code == 200 and probe.json()["provider"] == "google"
    assert not circuits.exists("router:cooldown:fails:google")  # the success closed the circuit
    assert _post(cooldown_gateway, alice_key, auto).json()["provider"] == "google"


def _open_google_circuit(gateway: LiveGateway, key: str, fake_upstream: Any, circuits: Redis) -> None:
    fake_upstream.control(model="gemini-2.0-flash", status=500)
    assert _post(gateway, key, {"model": "gemini-2.0-flash"}).status_code == 502
    assert circuits.exists("router:cooldown:open:google")
    fake_upstream.clear()


def test_a_model_asked_for_by_name_is_still_tried_in_cooldown_and_its_success_closes_the_circuit(
    cooldown_gateway, circuits, alice_key, fake_upstream
):
    _open_google_circuit(cooldown_gateway, alice_key, fake_upstream, circuits)
    manual = _post(cooldown_gateway, alice_key, {"model": "gemini-2.0-flash", "cache": False})
    assert manual.status_code == 200 and manual.json()["provider"] == "google"
    assert not circuits.exists("router:cooldown:open:google")
    assert (
        _post(cooldown_gateway, alice_key, {"model": "auto", "cache": False}).json()["provider"] == "google"
    )


def test_failures_below_the_threshold_do_not_open_the_circuit(
    cooldown_gateway, circuits, alice_key, fake_upstream
):
    fake_upstream.control(model="gemini-2.0-flash", status=500, times=1)
    response = _post(cooldown_gateway, alice_key, {"model": "gemini-2.0-flash"})
    assert response.status_code == 200 and _statuses(response) == [500, 200]
    assert not circuits.exists("router:cooldown:open:google")
    assert (
        _post(cooldown_gateway, alice_key, {"model": "auto", "cache": False}).json()["provider"] == "google"
    )


def test_a_streamed_answer_closes_the_circuit_and_adds_a_latency_sample(
    cooldown_gateway, circuits, alice_key, fake_upstream
):
    _open_google_circuit(cooldown_gateway, alice_key, fake_upstream, circuits)
    samples = circuits.llen("router:latency:gemini-2.0-flash")
    with httpx.stream(
        "POST",
        cooldown_gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {alice_key}"},
        json={"messages": HELLO, "model": "gemini-2.0-flash", "stream": True, "cache": False},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert any(line == "data: [DONE]" for line in response.iter_lines())
    assert not circuits.exists("router:cooldown:open:google")
    assert circuits.llen("router:latency:gemini-2.0-flash") == samples + 1


def test_an_embeddings_answer_closes_the_circuit_and_adds_a_latency_sample(
    cooldown_gateway, circuits, alice_key, fake_upstream
):
    _open_google_circuit(cooldown_gateway, alice_key, fake_upstream, circuits)
    response = httpx.post(
        cooldown_gateway.url + "/v1/embeddings",
        headers={"Authorization": f"Bearer {alice_key}"},
        json={"model": "gemini-embedding-001", "input": ["one", "two"]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert not circuits.exists("router:cooldown:open:google")
    assert circuits.llen("router:latency:gemini-embedding-001") == 1
    # The entry went with the sample, in the same round trip: asked again, it is a hit.
    again = httpx.post(
        cooldown_gateway.url + "/v1/embeddings",
        headers={"Authorization": f"Bearer {alice_key}"},
        json={"model": "gemini-embedding-001", "input": ["one", "two"]},
        timeout=30,
    )
    assert again.headers["x-router-cache"] == "hit"
