"""A live call keeps its hold: the owner renews it, so the expiry job frees only a dead process's holds."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from django.utils import timezone

from budgets.models import Budget, Reservation
from budgets.services import reservations_expire
from routing.models import GatewayRequest
from routing.services.requests_close import requests_close_stale
from routing.tests.live import LiveGateway, live_database_url

pytestmark = pytest.mark.e2e
HELLO = [{"role": "user", "content": "Tell me a long story."}]


def test_a_stream_that_outlives_the_reservation_ttl_keeps_its_hold_and_is_charged_once(
    transactional_db, catalog, fake_upstream, alice, alice_key, django_db_blocker
):
    fake_upstream.clear()
    fake_upstream.control(model="gpt-4o-mini", chunks=14, chunk_delay_ms=1000)  # a 14 s stream
    with django_db_blocker.unblock():
        url = live_database_url()
    env = {"ROUTER_RESERVATION_TTL_S": "10", "ROUTER_LEASE_RENEW_S": "1", "ROUTER_UPSTREAM_TIMEOUT_S": "5"}
    with LiveGateway(database_url=url, upstream=fake_upstream, env=env) as gateway:
        done: dict[str, object] = {}

        def stream() -> None:
            with httpx.stream(
                "POST",
                gateway.url + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {alice_key}"},
                json={"model": "gpt-4o-mini", "messages": HELLO, "stream": True, "cache": False},
                timeout=60,
            ) as response:
                done["lines"] = [line for line in response.iter_lines() if line.startswith("data: ")]
                done["id"] = response.headers["X-Request-Id"]

        thread = threading.Thread(target=stream)
        thread.start()
        expired = 0
        started = time.monotonic()
        while thread.is_alive() and time.monotonic() - started < 40:
            time.sleep(1)
            expired += reservations_expire()  # the periodic job, run far more often than in production
            requests_close_stale(now=timezone.now())
        thread.join(30)
    assert expired == 0, "the expiry job freed the hold of a call still in flight"
    assert done["lines"][-1] == "data: [DONE]"
    row = GatewayRequest.objects.get(pk=done["id"])
    assert row.status == "success" and row.total_cost_usd > 0
    hold = Reservation.objects.get(request_id=row.pk)
    assert hold.status == "settled" and hold.settled_usd == row.total_cost_usd
    budget = Budget.objects.get(user=alice)
    assert budget.reserved_usd == 0 and budget.spent_usd == row.total_cost_usd
    fake_upstream.clear()
