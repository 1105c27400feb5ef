"""POST /v1/tokens/estimate: tokens, costs and context fit per model, cheapest first."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from providers.models import Model, ModelPrice, Provider
from providers.token_encodings import O200K_BASE, get_encoding

URL = "/v1/tokens/estimate"
HELLO = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the capital of France?"},
]
MILLION = Decimal(1_000_000)


def _post(client: APIClient, body: Any) -> Any:
    return client.post(URL, body, format="json")


def _estimates(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    # Decimals exactly as rendered: a float would hide rounding noise.
    return json.loads(response.content, parse_float=Decimal)["estimates"]


def _price(model_id: str) -> ModelPrice:
    price = ModelPrice.objects.filter(model__model_id=model_id).order_by("-effective_from", "-id").first()
    assert price is not None
    return price


def _openai_chat_tokens(messages: list[dict[str, str]], encoding: str) -> int:
    """OpenAI's cookbook count, straight from tiktoken: 3 per message + role + content, 3 to prime the reply."""
    enc = get_encoding(encoding)
    assert enc is not None
    return sum(3 + len(enc.encode(m["role"])) + len(enc.encode(m["content"])) for m in messages) + 3


@pytest.fixture
def api(alice_api: APIClient, catalog: None) -> APIClient:
    return alice_api


# --------------------------------------------------------------------------------------------- one model


def test_one_model_gets_tiktoken_counts_and_exact_costs(api):
    (estimate,) = _estimates(_post(api, {"messages": HELLO, "model": "gpt-4o"}))
    price = _price("gpt-4o")
    prompt = _openai_chat_tokens(HELLO, O200K_BASE)
    assert estimate["model"] == "gpt-4o" and estimate["provider"] == "openai"
    assert estimate["method"] == "tiktoken:o200k_base"
    assert estimate["prompt_tokens"] == prompt
    assert estimate["expected_output_tokens"] == 500
    assert estimate["input_cost_usd"] == Decimal(prompt) * price.input_per_1m / MILLION
    assert estimate["output_cost_usd"] == 500 * price.output_per_1m / MILLION
    assert estimate["total_cost_usd"] == estimate["input_cost_usd"] + estimate["output_cost_usd"]
    assert estimate["fits_context"] is True


def test_gpt_3_5_turbo_counts_with_cl100k(api):
    (estimate,) = _estimates(_post(api, {"messages": HELLO, "model": "gpt-3.5-turbo"}))
    assert estimate["method"] == "tiktoken:cl100k_base"
    assert estimate["prompt_tokens"] == _openai_chat_tokens(HELLO, "cl100k_base")


def test_an_alias_resolves_and_claude_is_labelled_approx(api):
    (estimate,) = _estimates(_post(api, {"messages": HELLO, "model": "claude-sonnet-4.5"}))
    assert estimate["model"] == "claude-sonnet-4-5-20250929" and estimate["provider"] == "anthropic"
    assert estimate["method"] == "approx"
    # the approximation leans high: at least the o200k_base count
    assert estimate["prompt_tokens"] >= _openai_chat_tokens(HELLO, O200K_BASE)
    price = _price("claude-sonnet-4-5-20250929")
    assert estimate["input_cost_usd"] == estimate["prompt_tokens"] * price.input_per_1m / MILLION


def test_money_is_rendered_as_plain_json_numbers(api):
    response = _post(api, {"messages": HELLO, "model": "gpt-4o-mini", "expected_output_tokens": 1})
    body = response.content.decode()
    assert "e-" not in body and "E-" not in body
    assert '"output_cost_usd":0.0000006,' in body  # 1 token at $0.60 per 1M, digits exact
    assert '"input_cost_usd":"' not in body  # a number, not a string


def test_expected_output_is_capped_by_max_tokens_and_the_models_output_limit(api):
    (capped,) = _estimates(
        _post(api, {"messages": HELLO, "model": "gpt-4o", "expected_output_tokens": 800, "max_tokens": 100})
    )
    assert capped["expected_output_tokens"] == 100
    assert capped["output_cost_usd"] == 100 * _price("gpt-4o").output_per_1m / MILLION
    (limited,) = _estimates(
        _post(api, {"messages": HELLO, "model": "gpt-3.5-turbo", "expected_output_tokens": 10_000})
    )
    assert limited["expected_output_tokens"] == 4096


def test_tool_definitions_count_towards_the_prompt(api):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city"}}]
    (plain,) = _estimates(_post(api, {"messages": HELLO, "model": "gpt-4o"}))
    (with_tools,) = _estimates(_post(api, {"messages": HELLO, "model": "gpt-4o", "tools": tools}))
    assert with_tools["prompt_tokens"] > plain["prompt_tokens"]


# --------------------------------------------------------------------------------------------- many models


def test_a_list_gets_one_estimate_each_cheapest_first(api):
    names = ["claude-sonnet-4.5", "gpt-4o", "gpt-4o-mini", "gpt-4o"]
    estimates = _estimates(_post(api, {"messages": HELLO, "models": names}))
    assert [e["model"] for e in estimates] == ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5-20250929"]
    totals = [e["total_cost_usd"] for e in estimates]
    assert totals == sorted(totals)


def test_without_a_model_every_active_chat_model_is_estimated_cheapest_first(api):
    Model.objects.filter(model_id="gpt-4o").update(active=False)
    Provider.objects.filter(name="deepseek").update(active=False)
    estimates = _estimates(_post(api, {"messages": HELLO}))
    expected = set(
        Model.objects.filter(
            active=True, provider__active=True, prices__isnull=False, kind="chat"
        ).values_list("model_id", flat=True)
    )
    assert {e["model"] for e in estimates} == expected
    assert len(estimates) == len(expected)
    assert "gpt-4o" not in expected and not any(e["provider"] == "deepseek" for e in estimates)
    keys = [(e["total_cost_usd"], e["model"]) for e in estimates]
    assert keys == sorted(keys)
    assert {e["method"] for e in estimates} >= {"tiktoken:o200k_base", "approx"}


def test_fits_context_is_false_for_a_prompt_longer_than_the_window(api):
    huge = [{"role": "user", "content": "hello " * 20_000}]  # ~20k tokens; gpt-3.5-turbo holds 16,385
    estimates = _estimates(_post(api, {"messages": huge, "models": ["gpt-3.5-turbo", "gpt-4o"]}))
    fits = {e["model"]: e["fits_context"] for e in estimates}
    assert fits == {"gpt-3.5-turbo": False, "gpt-4o": True}
    small = _estimates(_post(api, {"messages": HELLO, "model": "gpt-3.5-turbo"}))
    assert small[0]["fits_context"] is True


def test_fits_context_counts_the_output_room_asked_for(api):
    (estimate,) = _estimates(_post(api, {"messages": HELLO, "model": "gpt-3.5-turbo", "max_tokens": 16_380}))
    assert estimate["fits_context"] is False


# --------------------------------------------------------------------------------------------- errors


def test_it_needs_an_api_key(catalog):
    response = _post(APIClient(), {"messages": HELLO})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_an_unknown_model_is_a_400_model_not_found(api):
    response = _post(api, {"messages": HELLO, "model": "gpt-9"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert error["type"] == "invalid_request_error" and "gpt-9" in error["message"]


def test_an_unknown_model_in_the_list_is_a_400_naming_models(api):
    response = _post(api, {"messages": HELLO, "models": ["gpt-4o", "gpt-9"]})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "model_not_found"
    assert response.json()["error"]["param"] == "models"


def test_an_inactive_model_is_not_found(api):
    Model.objects.filter(model_id="gpt-4o").update(active=False)
    response = _post(api, {"messages": HELLO, "model": "gpt-4o"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        ({"messages": HELLO, "expected_output_tokens": 0}, "expected_output_tokens"),
        ({"messages": HELLO, "expected_output_tokens": 2_000_001}, "expected_output_tokens"),
        ({"messages": HELLO, "max_tokens": 0}, "max_tokens"),
        ({"messages": HELLO, "models": []}, "models"),
        ({"messages": HELLO, "models": "gpt-4o"}, "models"),
        ({"messages": HELLO, "model": "gpt-4o", "models": ["gpt-4o-mini"]}, "models"),
    ],
)
def test_invalid_bodies_are_400s_naming_the_field(api, body, param):
    response = _post(api, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_the_largest_expected_output_is_accepted(api):
    (estimate,) = _estimates(
        _post(api, {"messages": HELLO, "model": "gpt-4o", "expected_output_tokens": 2_000_000})
    )
    assert estimate["expected_output_tokens"] == 16384  # capped by the model's output limit


def test_malformed_json_is_a_400(api):
    response = api.generic("POST", URL, b"{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
