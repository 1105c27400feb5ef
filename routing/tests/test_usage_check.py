"""Provider usage is checked: impossible counts are bounded, flagged and still recorded with their call."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import respx
from django.test import AsyncClient

from budgets.models import Reservation
from config.db import close_pools
from providers.adapters.base import Usage
from providers.catalog import catalog_invalidate
from routing.models import GatewayRequest
from routing.pipeline.usage_check import usage_checked

UPSTREAM = "http://upstream.test/v1"


def test_counts_within_bounds_pass_untouched():
    usage = Usage(prompt_tokens=100, completion_tokens=20, cached_tokens=40, reasoning_tokens=5)
    checked = usage_checked(usage, max_prompt=1000, max_output=50)
    assert checked.usage is usage and checked.anomalies == []


@pytest.mark.parametrize(
    ("usage", "expected", "flagged"),
    [
        (Usage(prompt_tokens=-5, completion_tokens=3), (0, 3, 0, 0), "prompt_tokens"),
        (Usage(prompt_tokens=10, completion_tokens=10**15), (10, 50, 0, 0), "completion_tokens"),
        (Usage(prompt_tokens=10**15, completion_tokens=1), (1000, 1, 0, 0), "prompt_tokens"),
        (Usage(prompt_tokens=10, completion_tokens=5, cached_tokens=11), (10, 5, 10, 0), "cached_tokens"),
        (Usage(prompt_tokens=10, completion_tokens=5, reasoning_tokens=9), (10, 5, 0, 5), "reasoning_tokens"),
        (Usage(prompt_tokens=10, completion_tokens=2.5), (10, 0, 0, 0), "completion_tokens"),  # type: ignore[arg-type]
    ],
)
def test_impossible_counts_are_bounded_and_named(usage, expected, flagged):
    checked = usage_checked(usage, max_prompt=1000, max_output=50)
    got = checked.usage
    assert (got.prompt_tokens, got.completion_tokens, got.cached_tokens, got.reasoning_tokens) == expected
    assert [a.split("=")[0] for a in checked.anomalies] == [flagged]


def _answer(usage: dict) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}
        ],
        "usage": usage,
    }


@pytest.fixture
def upstream(settings, catalog):
    settings.PROVIDER_BASE_URLS = {**settings.PROVIDER_BASE_URLS, "openai": UPSTREAM}
    catalog_invalidate()
    with respx.mock(assert_all_called=False) as mock:
        yield mock
    catalog_invalidate()


async def _post(key: str, body: dict):
    try:
        return await AsyncClient().post(
            "/v1/chat/completions",
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )
    finally:
        await close_pools()  # the in-process pool must not hold the test database open


@pytest.mark.django_db(transaction=True)
async def test_a_completion_of_ten_to_the_fifteen_tokens_is_charged_at_max_tokens_and_flagged(
    upstream, alice_key
):
    upstream.post(f"{UPSTREAM}/chat/completions").respond(
        json=_answer({"prompt_tokens": -3, "completion_tokens": 10**15, "total_tokens": 10**15})
    )
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "max_tokens": 50,
    }
    response = await _post(alice_key, body)
    assert response.status_code == 200, response.content
    answered = json.loads(response.content, parse_float=Decimal)
    assert answered["content"] == "Paris." and answered["usage"]["completion_tokens"] == 50
    row = await GatewayRequest.objects.aget(pk=response["X-Request-Id"])
    assert row.status == "success" and row.output_tokens == 50 and row.input_tokens == 0
    assert {a.split("=")[0] for a in row.usage_anomalies} == {"prompt_tokens", "completion_tokens"}
    hold = await Reservation.objects.aget(request_id=row.pk)
    assert hold.status == "settled" and row.total_cost_usd <= hold.amount_usd  # never above the worst case


@pytest.mark.django_db(transaction=True)
async def test_a_stream_whose_usage_is_impossible_ends_cleanly_and_is_recorded(upstream, alice_key):
    chunks = [
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": "Paris."}, "finish_reason": None}
            ],
        },
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        },
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": -7, "total_tokens": 5},
        },
    ]
    stream = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    upstream.post(f"{UPSTREAM}/chat/completions").respond(
        content=stream, headers={"Content-Type": "text/event-stream"}
    )
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Capital?"}], "stream": True}
    try:
        response = await AsyncClient().post(
            "/v1/chat/completions",
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {alice_key}"},
        )
        text = b"".join([piece async for piece in response.streaming_content]).decode()
    finally:
        await close_pools()
    assert text.endswith("data: [DONE]\n\n") and '"error"' not in text
    row = await GatewayRequest.objects.aget(pk=response["X-Request-Id"])
    assert row.status == "success" and row.output_tokens == 0 and row.input_tokens == 12
    assert [a.split("=")[0] for a in row.usage_anomalies] == ["completion_tokens"]
