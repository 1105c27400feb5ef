"""A stream whose upstream goes quiet mid-way is cut by the relay's own idle timeout, and is logged and charged.

The upstream keeps the line busy with SSE comments (`: keep-alive`, as DeepSeek sends), so the transport's read
timeout never fires: only the relay, which counts the wait for the next content chunk, can notice.
"""

from __future__ import annotations

import time

import httpx
import pytest

from budgets.models import Reservation
from routing.models import GatewayRequest
from routing.tests.live import LiveGateway, live_database_url

pytestmark = pytest.mark.e2e
HELLO = [{"role": "user", "content": "Tell me a long story."}]
MODEL = "deepseek-chat"


@pytest.fixture
def quick_gateway(transactional_db, catalog, fake_upstream, django_db_blocker):
    with django_db_blocker.unblock():
        url = live_database_url()
    env = {"ROUTER_UPSTREAM_TIMEOUT_S": "1"}
    fake_upstream.clear()
    with LiveGateway(database_url=url, upstream=fake_upstream, env=env) as gateway:
        yield gateway
    fake_upstream.clear()


def _stream(gateway: LiveGateway, key: str) -> tuple[list[str], str, float]:
    started = time.monotonic()
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": MODEL, "messages": HELLO, "stream": True, "cache": False},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
        return lines, response.headers["X-Request-Id"], time.monotonic() - started


def test_an_upstream_that_sends_only_keep_alives_is_cut_after_the_idle_timeout(
    quick_gateway, fake_upstream, alice_key
):
    fake_upstream.control(model=MODEL, chunks=3, chunk_delay_ms=8000, keepalive_ms=200)
    lines, request_id, elapsed = _stream(quick_gateway, alice_key)
    assert elapsed < 5, f"the stream ran {elapsed:.1f} s; the idle timeout is 1 s"
    assert lines[-1] == "data: [DONE]"
    assert '"stream_interrupted"' in lines[-2]
    assert any('"content"' in line for line in lines[:-2]), "the first chunk was relayed before the cut"
    row = GatewayRequest.objects.get(pk=request_id)
    assert row.status == "error" and row.error_code == "stream_interrupted"
    assert row.total_cost_usd > 0  # what was generated before the cut is charged
    hold = Reservation.objects.get(request_id=row.pk)
    assert hold.status == "settled" and hold.settled_usd == row.total_cost_usd


def test_the_idle_timeout_counts_each_wait_not_the_whole_stream(quick_gateway, fake_upstream, alice_key):
    # five waits of 0.6 s: every one under the 1 s limit, the stream as a whole far over it
    fake_upstream.control(model=MODEL, chunks=6, chunk_delay_ms=600, keepalive_ms=200)
    lines, request_id, elapsed = _stream(quick_gateway, alice_key)
    assert elapsed > 2.5
    assert lines[-1] == "data: [DONE]"
    assert not any('"error"' in line for line in lines)
    row = GatewayRequest.objects.get(pk=request_id)
    assert row.status == "success" and row.error_code == ""
