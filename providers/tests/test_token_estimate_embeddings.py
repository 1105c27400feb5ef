"""POST /v1/tokens/estimate with `input`: embedding models estimated per input, and each kind kept to its own."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from providers.token_encodings import get_encoding

URL = "/v1/tokens/estimate"
TEXTS = ["The cat sat on the mat.", "A dog barked twice."]
HELLO = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def api(alice_api: APIClient, catalog: None) -> APIClient:
    return alice_api


def _post(api: APIClient, body: dict[str, Any]) -> Any:
    return api.post(URL, body, format="json")


def _estimates(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    return json.loads(response.content, parse_float=Decimal)["estimates"]


def test_input_is_estimated_on_every_embedding_model_cheapest_first(api):
    estimates = _estimates(_post(api, {"input": TEXTS}))
    assert [e["model"] for e in estimates] == [
        "text-embedding-3-small",
        "text-embedding-3-large",
        "gemini-embedding-001",
    ]
    assert all(e["expected_output_tokens"] == 0 and e["output_cost_usd"] == 0 for e in estimates)
    assert all(e["fits_context"] for e in estimates)


def test_an_openai_embedding_model_counts_each_input_with_cl100k_and_no_chat_framing(api):
    encoding = get_encoding("cl100k_base")
    assert encoding is not None
    (estimate,) = _estimates(_post(api, {"input": TEXTS, "model": "text-embedding-3-small"}))
    tokens = sum(len(encoding.encode(t)) for t in TEXTS)
    assert estimate["method"] == "tiktoken:cl100k_base" and estimate["prompt_tokens"] == tokens
    assert estimate["total_cost_usd"] == Decimal(tokens) * Decimal("0.02") / 1_000_000


def test_gemini_is_labelled_approx_and_token_arrays_count_exactly(api):
    (gemini,) = _estimates(_post(api, {"input": "hello world", "model": "gemini-embedding-001"}))
    assert gemini["method"] == "approx" and gemini["prompt_tokens"] > 0
    (arrays,) = _estimates(_post(api, {"input": [[1, 2, 3], [4]], "model": "text-embedding-3-large"}))
    assert arrays["prompt_tokens"] == 4


def test_an_input_longer_than_the_models_window_does_not_fit(api):
    (estimate,) = _estimates(_post(api, {"input": ["word " * 3000], "model": "gemini-embedding-001"}))
    assert estimate["fits_context"] is False


def test_messages_are_estimated_on_chat_models_only(api):
    models = {e["model"] for e in _estimates(_post(api, {"messages": HELLO}))}
    assert "gpt-4o-mini" in models and not models & {"text-embedding-3-small", "gemini-embedding-001"}


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"input": "hi", "model": "gpt-4o-mini"}, "is a chat model, not an embedding model"),
        ({"messages": HELLO, "model": "text-embedding-3-small"}, "is an embedding model, not a chat model"),
        ({"input": "hi", "models": ["text-embedding-3-small", "gpt-4o"]}, "is a chat model"),
    ],
)
def test_a_model_of_the_other_kind_is_a_400_naming_the_kind(api, body, kind):
    response = _post(api, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "model_not_found" and kind in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "messages"),
        ({"messages": HELLO, "input": "hi"}, "messages"),
        ({"input": []}, "input"),
        ({"input": ["a", ""]}, "input[1]"),
        ({"input": ["x"] * 2049}, "input"),
    ],
)
def test_bad_bodies_are_400s_naming_the_field(api, body, param):
    response = _post(api, body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
