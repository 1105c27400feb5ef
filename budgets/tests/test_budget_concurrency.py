"""The budget holds under concurrency: 200 requests at once, two gateway processes, a limit for about 20."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

import httpx
import pytest
from django.db.models import Sum

from budgets.models import Budget, Reservation
from budgets.services import budget_get_or_create
from providers.bounds import prompt_tokens_bound
from providers.catalog import catalog_get
from providers.cost_bounds import worst_case_cost
from routing.models import GatewayRequest

pytestmark = pytest.mark.e2e
MODEL = "gpt-4o-mini"
MAX_TOKENS = 10  # the fake answers with more words, so every answer is cut at max_tokens: actual ~ worst
REQUESTS = 200
FITS = 20
UPSTREAM_DELAY_MS = 200


def _messages(index: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Say hello, request number {index:03d}"}]


def _worst_case(index: int) -> Decimal:
    """What the gateway reserves per request: the prompt's upper bound at the input rate + max_tokens at output."""
    model = catalog_get(fresh=True).by_name(MODEL)
    assert model is not None and model.rates is not None
    prompt_tokens = min(prompt_tokens_bound(_messages(index)), model.context_window)
    return worst_case_cost(model.rates, prompt_tokens, MAX_TOKENS)


async def _fire(urls: list[str], key: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=REQUESTS * 2, max_keepalive_connections=REQUESTS * 2)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(index: int) -> httpx.Response:
            return await client.post(
                urls[index % len(urls)] + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={"model": MODEL, "messages": _messages(index), "max_tokens": MAX_TOKENS, "cache": False},
            )

        return await asyncio.gather(*(one(i) for i in range(REQUESTS)))


def test_200_concurrent_requests_on_two_processes_never_overrun_the_budget(
    two_gateways, fake_upstream, alice, alice_key, capsys
):
    worst = max(_worst_case(i) for i in range(REQUESTS))
    limit = worst * FITS  # room for exactly 20 worst cases
    budget = budget_get_or_create(user_id=alice.pk)
    Budget.objects.filter(pk=budget.pk).update(own_limit_usd=limit)
    fake_upstream.control(model=MODEL, delay_ms=UPSTREAM_DELAY_MS)

    responses = asyncio.run(_fire([gateway.url for gateway in two_gateways], alice_key))

    statuses = Counter(response.status_code for response in responses)
    succeeded, refused = statuses[200], statuses[402]
    budget.refresh_from_db()
    logged = GatewayRequest.objects.filter(user=alice).aggregate(total=Sum("total_cost_usd"))["total"]
    with capsys.disabled():
        print(
            f"\n{REQUESTS} concurrent requests on 2 processes: {succeeded} x 200, {refused} x 402; "
            f"spent {budget.spent_usd.normalize()} of {limit.normalize()} (worst case {worst.normalize()})"
        )

    assert succeeded + refused == REQUESTS, statuses
    # The first 20 always fit. A settled request costs a little under its worst case (the prompt estimate
    # runs high), so a late arrival may use what settling freed, but never more than the money allows.
    cheapest = min(
        GatewayRequest.objects.filter(user=alice, status="success").values_list("total_cost_usd", flat=True)
    )
    assert FITS <= succeeded <= int((limit - worst) / cheapest) + 1
    assert budget.spent_usd <= limit
    # a refused request never reached the provider: the fake saw exactly the successful ones
    assert len(fake_upstream.requests(model=MODEL)) == succeeded
    # the request log and the budget agree to the last decimal, and nothing is left held
    assert logged == budget.spent_usd
    assert budget.reserved_usd == 0
    assert not Reservation.objects.filter(status=Reservation.Status.OPEN).exists()
    assert Reservation.objects.filter(user=alice, status=Reservation.Status.SETTLED).count() == succeeded

    error = next(r for r in responses if r.status_code == 402).json()["error"]
    assert error["type"] == "budget_exceeded"
    for name in ("reason", "total_spent_usd", "spending_limit_usd", "remaining_budget_usd"):
        assert name in error
    assert Decimal(str(error["estimated_cost_usd"])) == _worst_case(0)
    assert Decimal(str(error["spending_limit_usd"])) == limit
