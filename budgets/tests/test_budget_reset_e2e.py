"""Through a live gateway (PostgreSQL's one-statement hold): spend, reset, repeat never passes an admin limit."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from budgets.models import Budget
from budgets.services import budget_get_or_create

pytestmark = pytest.mark.e2e
MODEL = "gpt-4o-mini"
BODY = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Say hello in a few words"}],
    "max_tokens": 16,
    "cache": False,
}


def _post(url: str, key: str, path: str, body: dict | None = None) -> httpx.Response:
    return httpx.post(url + path, headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30)


def _worst_case(url: str, key: str, budget: Budget) -> Decimal:
    """The gateway's own hold for BODY, read off the 402 at a zero limit."""
    Budget.objects.filter(pk=budget.pk).update(admin_limit_usd=Decimal(0))
    refused = _post(url, key, "/v1/chat/completions", BODY)
    assert refused.status_code == 402, refused.text
    Budget.objects.filter(pk=budget.pk).update(admin_limit_usd=None)
    return Decimal(str(refused.json()["error"]["estimated_cost_usd"]))


def test_spending_and_resetting_never_passes_the_admin_limit(e2e, fake_upstream, alice, alice_key):
    budget = budget_get_or_create(user_id=alice.pk)
    worst = _worst_case(e2e.url, alice_key, budget)
    limit = worst * 5 / 2
    Budget.objects.filter(pk=budget.pk).update(admin_limit_usd=limit)

    statuses, refusal = [], None
    for _ in range(8):
        response = _post(e2e.url, alice_key, "/v1/chat/completions", BODY)
        statuses.append(response.status_code)
        if response.status_code == 402:
            refusal = response.json()["error"]
        assert _post(e2e.url, alice_key, "/v1/budget/reset").status_code == 200

    assert 200 in statuses and 402 in statuses, statuses
    first_refusal = statuses.index(402)
    assert set(statuses[first_refusal:]) == {402}, statuses  # no reset lifts the admin's limit
    budget.refresh_from_db()
    assert budget.spent_usd <= limit and budget.reserved_usd == 0
    assert refusal is not None and Decimal(str(refusal["spending_limit_usd"])) == limit
    assert Decimal(str(refusal["total_spent_usd"])) == budget.spent_usd  # the period's real spending
    # Each 402 came before any provider call.
    assert len(fake_upstream.requests(model=MODEL)) == statuses.count(200)


def test_a_reset_frees_the_users_own_limit(e2e, fake_upstream, alice, alice_key):
    budget = budget_get_or_create(user_id=alice.pk)
    worst = _worst_case(e2e.url, alice_key, budget)
    Budget.objects.filter(pk=budget.pk).update(own_limit_usd=worst)

    assert _post(e2e.url, alice_key, "/v1/chat/completions", BODY).status_code == 200
    assert _post(e2e.url, alice_key, "/v1/chat/completions", BODY).status_code == 402
    reset = _post(e2e.url, alice_key, "/v1/budget/reset").json()
    assert reset["spending"]["total_spent_usd"] == 0
    assert _post(e2e.url, alice_key, "/v1/chat/completions", BODY).status_code == 200

    budget.refresh_from_db()
    assert budget.spent_usd - budget.reset_offset_usd <= worst
    assert len(fake_upstream.requests(model=MODEL)) == 2
