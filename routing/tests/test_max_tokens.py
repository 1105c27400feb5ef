"""max_tokens is judged against the model before anything is held: above its max output, or too large to fit
beside the prompt, it is a 400 naming the field, with nothing written and no provider called."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import AsyncClient

from budgets.models import Reservation
from config.db import close_pools
from routing.models import Attempt, GatewayRequest

HELLO = [{"role": "user", "content": "What is the capital of France?"}]


async def _post(path: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    """Status, JSON body and X-Request-Id."""
    try:
        response = await AsyncClient().post(
            path, body, content_type="application/json", headers={"Authorization": f"Bearer {key}"}
        )
    finally:
        await close_pools()  # the in-process pool must not hold the test database open
    return (
        response.status_code,
        json.loads(response.content, parse_float=Decimal),
        response.get("X-Request-Id", ""),
    )


async def _counts() -> tuple[int, int, int]:
    return (
        await GatewayRequest.objects.acount(),
        await Attempt.objects.acount(),
        await Reservation.objects.acount(),
    )


async def _refused(
    path: str, key: str, body: dict[str, Any], upstream: Any, status: int = 400
) -> dict[str, Any]:
    """The error of a request refused before any write or call."""
    before = await _counts()
    got, answer, _ = await _post(path, key, body)
    assert got == status, answer
    assert await _counts() == before
    assert upstream.requests() == []
    error: dict[str, Any] = answer["error"]
    assert error["type"] == "invalid_request_error"
    return error


pytestmark = pytest.mark.django_db(transaction=True)


async def test_chat_max_tokens_above_the_models_max_output_is_400_naming_the_limit(upstream, alice_key):
    body = {"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 127_000}
    error = await _refused("/v1/chat/completions", alice_key, body, upstream)
    assert error == {
        "message": "max_tokens is 127000, above gpt-4o-mini's maximum output of 16384 tokens",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "max_tokens_too_large",
    }


async def test_chat_max_completion_tokens_is_judged_the_same(upstream, alice_key):
    body = {"model": "gpt-4o-mini", "messages": HELLO, "max_completion_tokens": 127_000}
    error = await _refused("/v1/chat/completions", alice_key, body, upstream)
    assert error["code"] == "max_tokens_too_large"


async def test_chat_max_tokens_that_does_not_fit_beside_the_prompt_is_400_not_413(upstream, alice_key):
    # About 13,000 tokens: inside gpt-3.5-turbo's 16,385 window, not with its 4,096 max output beside it.
    messages = [{"role": "user", "content": "hello " * 13_000}]
    body = {"model": "gpt-3.5-turbo", "messages": messages, "max_tokens": 4_096}
    error = await _refused("/v1/chat/completions", alice_key, body, upstream)
    assert error["param"] == "max_tokens"
    assert error["code"] == "max_tokens_exceeds_context"
    assert re.fullmatch(
        r"prompt of \d+ tokens plus max_tokens 4096 exceed the context window 16385 of model gpt-3\.5-turbo",
        error["message"],
    )


async def test_chat_a_prompt_too_long_by_itself_stays_413(upstream, alice_key):
    messages = [{"role": "user", "content": "hello " * 150_000}]
    body = {"model": "gpt-4o-mini", "messages": messages, "max_tokens": 1_000}
    error = await _refused("/v1/chat/completions", alice_key, body, upstream, status=413)
    assert error["code"] == "context_length_exceeded"
    assert error["param"] == "messages"


@pytest.mark.parametrize(
    "routing", [{"model": "auto"}, {"mode": "cost-optimized"}, {"mode": "latency-optimized"}]
)
async def test_chat_optimized_modes_refuse_only_when_no_model_writes_that_much(upstream, alice_key, routing):
    body = {**routing, "messages": HELLO, "max_tokens": 127_000}
    error = await _refused("/v1/chat/completions", alice_key, body, upstream)
    assert error["param"] == "max_tokens"
    assert error["code"] == "max_tokens_too_large"
    assert error["message"].startswith("max_tokens is 127000, above the maximum output of every model")
    assert "65536" in error["message"]  # the most any catalog model writes: the limit to ask for instead


async def test_chat_optimized_modes_route_to_a_model_that_writes_that_much(upstream, alice_key):
    got, answer, _ = await _post(
        "/v1/chat/completions", alice_key, {"model": "auto", "messages": HELLO, "max_tokens": 60_000}
    )
    assert got == 200, answer
    # Only the Gemini 2.5 models (65,536) and the Sonnets (64,000) write 60,000 tokens.
    assert answer["model"].startswith(("gemini-2.5", "claude-sonnet"))


async def test_chat_a_fitting_max_tokens_is_sent_and_held_as_is(upstream, alice_key):
    body = {"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 16_384}
    got, answer, request_id = await _post("/v1/chat/completions", alice_key, body)
    assert got == 200, answer
    assert upstream.requests()[-1]["body"]["max_completion_tokens"] == 16_384
    row = await GatewayRequest.objects.aget(pk=request_id)
    assert row.status == "success"
    assert await Reservation.objects.filter(request_id=row.pk).acount() == 1


async def test_a_fallback_that_writes_less_than_max_tokens_is_skipped_for_one_that_can(upstream, alice_key):
    body = {
        "model": "claude-sonnet-4-5-20250929",
        "fallbacks": ["gpt-4o-mini", "claude-sonnet-4-20250514"],
        "messages": HELLO,
        "max_tokens": 20_000,
    }
    upstream.control(model="claude-sonnet-4-5-20250929", status=500, times=10)
    got, answer, _ = await _post("/v1/chat/completions", alice_key, body)
    assert got == 200, answer
    assert answer["model"] == "claude-sonnet-4-20250514"
    assert upstream.requests(model="gpt-4o-mini") == []  # never an option: it writes at most 16,384


async def test_responses_max_output_tokens_above_the_models_max_output_is_400_naming_it(upstream, alice_key):
    body = {"model": "gpt-4o-mini", "input": "What is the capital of France?", "max_output_tokens": 127_000}
    error = await _refused("/v1/responses", alice_key, body, upstream)
    assert error == {
        "message": "max_output_tokens is 127000, above gpt-4o-mini's maximum output of 16384 tokens",
        "type": "invalid_request_error",
        "param": "max_output_tokens",
        "code": "max_tokens_too_large",
    }


async def test_responses_max_output_tokens_that_does_not_fit_beside_the_prompt_is_400(upstream, alice_key):
    body = {"model": "gpt-3.5-turbo", "input": "hello " * 13_000, "max_output_tokens": 4_096}
    error = await _refused("/v1/responses", alice_key, body, upstream)
    assert error["param"] == "max_output_tokens"
    assert error["code"] == "max_tokens_exceeds_context"
    assert (
        "plus max_output_tokens 4096 exceed the context window 16385 of model gpt-3.5-turbo"
        in error["message"]
    )


async def test_responses_auto_refuses_when_no_model_writes_that_much(upstream, alice_key):
    body = {"model": "auto", "input": "Hi", "max_output_tokens": 127_000}
    error = await _refused("/v1/responses", alice_key, body, upstream)
    assert error["param"] == "max_output_tokens"
    assert error["code"] == "max_tokens_too_large"


async def test_responses_a_fitting_max_output_tokens_is_accepted(upstream, alice_key):
    body = {"model": "gpt-4o-mini", "input": "What is the capital of France?", "max_output_tokens": 16_384}
    got, answer, request_id = await _post("/v1/responses", alice_key, body)
    assert got == 200, answer
    assert upstream.requests()[-1]["body"]["max_output_tokens"] == 16_384
    assert (await GatewayRequest.objects.aget(pk=request_id)).status == "success"


@pytest.mark.django_db(transaction=True)
async def test_the_messages_door_lowers_a_claude_code_sized_max_tokens_to_the_models_maximum(
    catalog, alice_key, fake_upstream, settings
):
    settings.PROVIDER_BASE_URLS = fake_upstream.base_urls
    fake_upstream.clear()
    try:
        response = await AsyncClient().post(
            "/v1/messages",
            {
                "model": "claude-3-5-haiku-20241022",
                "max_tokens": 32000,
                "messages": [{"role": "user", "content": "Hi"}],
            },
            content_type="application/json",
            headers={"x-api-key": alice_key, "anthropic-version": "2023-06-01"},
        )
    finally:
        await close_pools()
    assert response.status_code == 200, response.content
    assert fake_upstream.requests()[-1]["body"]["max_tokens"] == 8192
