"""Streams settle when they end, also when the client goes away; so do requests whose client gives up."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
import pytest

from budgets.models import Budget, Reservation
from budgets.services import budget_get_or_create
from routing.models import GatewayRequest

pytestmark = pytest.mark.e2e
MODEL = "gpt-4o-mini"
HELLO = [{"role": "user", "content": "Tell me a long story about the capital of France."}]


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _wait_for(predicate, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def _settled(user) -> Budget:
    """The budget once nothing is held any more (polled: the gateway settles after the client is gone)."""
    _wait_for(lambda: not Reservation.objects.filter(user=user, status=Reservation.Status.OPEN).exists())
    return Budget.objects.get(user=user)


def test_a_stream_whose_client_disconnects_mid_way_still_settles(e2e, fake_upstream, alice, alice_key):
    budget_get_or_create(user_id=alice.pk)
    Budget.objects.filter(user=alice).update(own_limit_usd=Decimal("1"))
    fake_upstream.control(model=MODEL, chunks=40, chunk_delay_ms=100)
    with httpx.stream(
        "POST",
        e2e.url + "/v1/chat/completions",
        headers=_headers(alice_key),
        json={"model": MODEL, "messages": HELLO, "stream": True, "cache": False},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        request_id = response.headers["X-Request-Id"]
        received: list[str] = []
        for line in response.iter_lines():
            if line.startswith("data: "):
                received.append(line)
            if len(received) == 3:  # the role chunk and two content chunks, then hang up
                break

    row = _wait_for(lambda: GatewayRequest.objects.filter(pk=request_id).exclude(status="pending").first())
    assert row is not None, "the request was never logged"
    assert row.error_code == "client_disconnected" and row.http_status == 499
    assert 0 < row.output_tokens < 40 and row.total_cost_usd > 0  # charged for what was generated
    budget = _settled(alice)
    assert budget.reserved_usd == 0
    assert budget.spent_usd == row.total_cost_usd
    reservation = Reservation.objects.get(user=alice)
    assert reservation.status == Reservation.Status.SETTLED and reservation.settled_usd == row.total_cost_usd


def test_a_stream_that_ends_normally_settles_at_its_cost(e2e, alice, alice_key):
    with httpx.stream(
        "POST",
        e2e.url + "/v1/chat/completions",
        headers=_headers(alice_key),
        json={"model": MODEL, "messages": HELLO, "stream": True, "cache": False},
        timeout=30,
    ) as response:
        request_id = response.headers["X-Request-Id"]
        assert list(response.iter_lines())[-2] == "data: [DONE]"
    row = GatewayRequest.objects.get(pk=request_id)
    budget = _settled(alice)
    assert row.status == "success"
    assert budget.spent_usd == row.total_cost_usd > 0 and budget.reserved_usd == 0


def test_a_streaming_client_that_gives_up_before_the_first_byte_leaves_nothing_held(
    e2e, fake_upstream, alice, alice_key
):
    """The opening finishes without the client; the stream it opened ends as a disconnect and settles."""
    fake_upstream.control(model=MODEL, delay_ms=1000)
    with pytest.raises(httpx.TimeoutException):
        httpx.post(
            e2e.url + "/v1/chat/completions",
            headers=_headers(alice_key),
            json={"model": MODEL, "messages": HELLO, "stream": True, "cache": False},
            timeout=0.3,
        )
    row = _wait_for(lambda: GatewayRequest.objects.filter(user=alice).exclude(status="pending").first())
    assert row is not None, "the request was never logged"
    assert row.error_code == "client_disconnected" and row.http_status == 499
    assert row.total_cost_usd > 0  # the provider read the prompt
    budget = _settled(alice)
    assert budget.reserved_usd == 0 and budget.spent_usd == row.total_cost_usd
    assert len(fake_upstream.requests(model=MODEL)) == 1


def test_a_client_that_gives_up_on_a_non_streaming_request_is_still_charged_what_the_call_cost(
    e2e, fake_upstream, alice, alice_key
):
    """The provider answers (and bills) all the same: the call completes, is logged and settles."""
    fake_upstream.control(model=MODEL, delay_ms=1000)
    with pytest.raises(httpx.TimeoutException):
        httpx.post(
            e2e.url + "/v1/chat/completions",
            headers=_headers(alice_key),
            json={"model": MODEL, "messages": HELLO, "cache": False},
            timeout=0.3,
        )
    row = _wait_for(lambda: GatewayRequest.objects.filter(user=alice).exclude(status="pending").first())
    assert row is not None, "the request was never logged"
    assert row.status == "success" and row.output_tokens > 0
    budget = _settled(alice)
    assert budget.reserved_usd == 0 and budget.spent_usd == row.total_cost_usd > 0
    assert Reservation.objects.get(user=alice).status == Reservation.Status.SETTLED
