"""budget_policy "fit" lowers max_tokens to what the remaining budget pays for; the default refuses (402)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from budgets.models import Budget, Reservation
from budgets.services import budget_get_or_create
from providers.bounds import prompt_tokens_bound
from providers.catalog import catalog_get
from providers.cost_bounds import max_output_tokens_affordable, worst_case_cost
from routing.models import GatewayRequest

pytestmark = pytest.mark.e2e
MODEL = "gpt-4o-mini"
HELLO = [{"role": "user", "content": "What is the capital of France? Answer at length, please."}]
DETAIL_FIELDS = (
    "reason",
    "total_spent_usd",
    "spending_limit_usd",
    "remaining_budget_usd",
    "estimated_cost_usd",
    "would_exceed_by_usd",
)


def _model():
    model = catalog_get(fresh=True).by_name(MODEL)
    assert model is not None and model.rates is not None
    return model


def _prompt_tokens() -> int:
    return prompt_tokens_bound(HELLO)  # what a hold covers: the prompt's upper bound, whatever the tokenizer


def _limit(user, amount: Decimal) -> Budget:
    budget = budget_get_or_create(user_id=user.pk)
    Budget.objects.filter(pk=budget.pk).update(own_limit_usd=amount)
    return budget


def _post(gateway, key: str, **body) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": MODEL, "messages": HELLO, "cache": False, **body},
        timeout=30,
    )


def _sent_max_tokens(fake_upstream) -> list[int]:
    bodies = [r["body"] for r in fake_upstream.requests(model=MODEL)]
    return [b.get("max_completion_tokens", b.get("max_tokens")) for b in bodies]


def _room_for(output_tokens: int) -> Decimal:
    """A limit with room for the prompt and exactly `output_tokens` tokens of answer."""
    return worst_case_cost(_model().rates, _prompt_tokens(), output_tokens)


def test_fit_lowers_max_tokens_to_what_the_budget_can_pay_for(e2e, fake_upstream, alice, alice_key):
    limit = _room_for(5)
    budget = _limit(alice, limit)
    response = _post(e2e, alice_key, max_tokens=1000, budget_policy="fit")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["budget_fitted"] is True
    assert body["max_tokens_applied"] == 5
    assert _sent_max_tokens(fake_upstream) == [5]  # the provider was asked for 5, not 1000
    assert body["usage"]["completion_tokens"] <= 5 and body["finish_reason"] == "length"

    budget.refresh_from_db()
    row = GatewayRequest.objects.get(pk=body["id"])
    assert row.budget_fitted is True
    assert budget.spent_usd == row.total_cost_usd <= limit
    assert budget.reserved_usd == 0


def test_fit_without_max_tokens_caps_the_models_own_maximum(e2e, fake_upstream, alice, alice_key):
    model = _model()
    limit = _room_for(7)
    _limit(alice, limit)
    expected = max_output_tokens_affordable(
        model.rates, _prompt_tokens(), limit, limit=model.max_output_tokens
    )
    response = _post(e2e, alice_key, budget_policy="fit")
    assert response.status_code == 200, response.text
    assert expected == 7 and response.json()["max_tokens_applied"] == 7
    assert _sent_max_tokens(fake_upstream) == [7]


def test_fit_counts_what_is_already_spent(e2e, fake_upstream, alice, alice_key):
    budget = _limit(alice, _room_for(5) + Decimal("0.01"))
    Budget.objects.filter(pk=budget.pk).update(spent_usd=Decimal("0.01"))
    response = _post(e2e, alice_key, max_tokens=1000, budget_policy="fit")
    assert response.json()["max_tokens_applied"] == 5
    assert _sent_max_tokens(fake_upstream) == [5]


def test_fit_changes_nothing_when_the_worst_case_already_fits(e2e, fake_upstream, alice, alice_key):
    _limit(alice, Decimal("1"))
    response = _post(e2e, alice_key, max_tokens=50, budget_policy="fit")
    assert response.status_code == 200
    assert "budget_fitted" not in response.json() and "max_tokens_applied" not in response.json()
    assert _sent_max_tokens(fake_upstream) == [50]


def test_the_default_policy_refuses_with_402_and_the_budget_details(e2e, fake_upstream, alice, alice_key):
    limit = _room_for(5)
    budget = _limit(alice, limit)
    response = _post(e2e, alice_key, max_tokens=1000)
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["type"] == "budget_exceeded" and error["code"] == "budget_exceeded"
    for name in DETAIL_FIELDS:
        assert name in error, name
    worst = worst_case_cost(_model().rates, _prompt_tokens(), 1000)
    assert error["reason"] == "limit_would_be_exceeded"
    assert Decimal(str(error["total_spent_usd"])) == 0
    assert Decimal(str(error["spending_limit_usd"])) == limit
    assert Decimal(str(error["remaining_budget_usd"])) == limit
    assert Decimal(str(error["estimated_cost_usd"])) == worst
    assert Decimal(str(error["would_exceed_by_usd"])) == worst - limit

    assert fake_upstream.requests() == []  # refused before any provider was called
    budget.refresh_from_db()
    assert budget.spent_usd == 0 and budget.reserved_usd == 0
    assert not Reservation.objects.filter(user=alice).exists()


def test_fit_still_refuses_when_not_even_the_prompt_fits(e2e, fake_upstream, alice, alice_key):
    _limit(alice, _room_for(0) - Decimal("0.0000000001"))
    response = _post(e2e, alice_key, max_tokens=1000, budget_policy="fit")
    assert response.status_code == 402
    assert fake_upstream.requests() == []


def test_a_fallback_reserves_its_own_worst_case_and_is_not_fitted(e2e, fake_upstream, alice, alice_key):
    """The first model fails; the fallback needs its own hold, and a budget with room for only one refuses it."""
    fake_upstream.control(model=MODEL, status=503)
    _limit(alice, _room_for(5))
    response = _post(e2e, alice_key, max_tokens=5, fallbacks=["gpt-4o"])
    assert response.status_code == 502  # gpt-4o's worst case does not fit: the failures so far are reported
    assert [r["model"] for r in fake_upstream.requests()] == [MODEL, MODEL]
    budget = Budget.objects.get(user=alice)
    assert budget.spent_usd == 0 and budget.reserved_usd == 0
