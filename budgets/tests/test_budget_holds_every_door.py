"""200 concurrent requests on two processes, on every door, against a vendor that counts prompt tokens its
own way (10 + words, not our estimator's way): the holds bound every call, so spending never passes the limit."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.db.models import Sum

from budgets.models import Budget, Reservation
from budgets.services import budget_get_or_create
from routing.models import GatewayRequest

pytestmark = pytest.mark.e2e
REQUESTS = 200
FITS = 20
MAX_TOKENS = 16


def _request(door: str, model: str, index: int, key: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    text = f"Say hello, request number {index:03d}, in a few well chosen words"
    if door == "messages":
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        body = {"model": model, "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": text}]}
        return "/v1/messages", headers, body
    headers = {"Authorization": f"Bearer {key}", "Cache-Control": "no-cache, no-store"}
    if door == "responses":
        return "/v1/responses", headers, {"model": model, "input": text, "max_output_tokens": MAX_TOKENS}
    return "/v1/chat/completions", headers, {
        "model": model, "messages": [{"role": "user", "content": text}], "max_tokens": MAX_TOKENS
    }  # fmt: skip


async def _fire(urls: list[str], door: str, model: str, key: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=REQUESTS * 2, max_keepalive_connections=REQUESTS * 2)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(index: int) -> httpx.Response:
            path, headers, body = _request(door, model, index, key)
            return await client.post(urls[index % len(urls)] + path, headers=headers, json=body)

        return await asyncio.gather(*(one(i) for i in range(REQUESTS)))


def _hold(url: str, door: str, model: str, key: str) -> Decimal:
    """The gateway's own worst case for the largest of these requests, read off a 402 at a zero limit."""
    path, headers, body = _request(door, model, REQUESTS - 1, key)
    refused = httpx.post(url + path, headers=headers, json=body, timeout=30)
    assert refused.status_code == 402, refused.text
    payload = refused.json()
    error = payload["error"]
    return Decimal(str(error["estimated_cost_usd"]))


@pytest.mark.parametrize(
    ("door", "model"),
    [("chat", "gpt-4o-mini"), ("messages", "claude-3-5-haiku-20241022"), ("messages", "gpt-4o-mini"),
     ("responses", "gpt-4o-mini"), ("responses", "gemini-2.5-flash")],
)  # fmt: skip
def test_no_door_overruns_the_budget_whatever_the_vendor_counts(
    two_gateways, fake_upstream, alice, alice_key, door, model
):
    budget = budget_get_or_create(user_id=alice.pk)
    Budget.objects.filter(pk=budget.pk).update(own_limit_usd=Decimal(0))
    worst = _hold(two_gateways[0].url, door, model, alice_key)
    limit = worst * FITS
    Budget.objects.filter(pk=budget.pk).update(own_limit_usd=limit)
    GatewayRequest.objects.all().delete()
    upstream = {"claude-3-5-haiku-20241022": "claude-3-5-haiku-20241022"}.get(model, model)
    fake_upstream.control(model=upstream, prompt_counting="words", delay_ms=200, answer="word " * 100)

    responses = asyncio.run(_fire([g.url for g in two_gateways], door, model, alice_key))

    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] + statuses[402] == REQUESTS, statuses
    assert statuses[200] >= FITS
    budget.refresh_from_db()
    logged = GatewayRequest.objects.filter(user=alice).aggregate(total=Sum("total_cost_usd"))["total"]
    assert budget.spent_usd <= limit, f"spent {budget.spent_usd} of {limit}"
    assert logged == budget.spent_usd and budget.reserved_usd == 0
    # Every count the vendor gave was possible: none had to be cut to the bound.
    assert not GatewayRequest.objects.exclude(usage_anomalies=[]).exists()
    assert len(fake_upstream.requests(model=upstream)) == statuses[200]  # a 402 never reached the provider
    assert not Reservation.objects.filter(status=Reservation.Status.OPEN).exists()
