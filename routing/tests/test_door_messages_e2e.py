"""End to end: the official anthropic SDK against /v1/messages on a live gateway, a model of each vendor."""

from __future__ import annotations

import json
from decimal import Decimal

import anthropic
import httpx
import pytest

from budgets.models import Reservation
from routing.models import GatewayRequest

pytestmark = pytest.mark.e2e
MODELS = ["claude-sonnet-4.5", "gpt-4o-mini", "gemini-2.5-flash"]
HELLO = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


@pytest.fixture
def claude(e2e, alice_key):
    return anthropic.Anthropic(base_url=e2e.url, api_key=alice_key, max_retries=0, timeout=30)


def _row(request_id: str) -> GatewayRequest:
    return GatewayRequest.objects.get(pk=request_id)


def _rows() -> int:
    return GatewayRequest.objects.count()


@pytest.mark.parametrize("model", MODELS)
def test_messages_create_answers_on_every_vendor(claude, fake_upstream, model):
    raw = claude.messages.with_raw_response.create(model=model, max_tokens=200, messages=HELLO)
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and "fake answer" in message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    row = _row(raw.headers["X-Request-Id"])
    assert row.door == "messages" and row.status == "success" and row.total_cost_usd > 0
    assert raw.headers["X-Router-Cost-Usd"] == str(row.total_cost_usd.normalize())
    assert float(raw.headers["X-Router-Overhead-Ms"]) >= 0
    assert message.model_extra["router"]["request_id"] == row.id
    assert (fake_upstream.requests()[-1]["format"] == "anthropic") == model.startswith("claude")


def test_a_claude_model_gets_the_body_natively_with_betas_and_cache_control(claude, fake_upstream):
    system = [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}]
    message = claude.beta.messages.create(
        model="claude-sonnet-4.5",
        max_tokens=300,
        system=system,
        messages=HELLO,
        metadata={"user_id": json.dumps({"session_id": "abc"})},
        thinking={"type": "enabled", "budget_tokens": 1024},
        betas=["interleaved-thinking-2025-05-14"],
    )
    assert message.content[-1].type == "text"
    sent = fake_upstream.requests()[-1]
    assert sent["body"]["system"] == system  # untouched, cache_control included
    assert sent["body"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert sent["body"]["model"] == "claude-sonnet-4-5-20250929"  # the alias mapped to the catalog id
    assert "interleaved-thinking-2025-05-14" in sent["headers"].get("anthropic-beta", "")


@pytest.mark.parametrize("model", MODELS)
def test_a_streamed_tool_use_round_trip_works_on_every_vendor(claude, model):
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    with claude.messages.stream(model=model, max_tokens=200, messages=ask, tools=[WEATHER]) as stream:
        final = stream.get_final_message()
        request_id = stream.response.headers["X-Request-Id"]
    assert final.stop_reason == "tool_use"
    call = next(block for block in final.content if block.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"location": "Paris"}
    assert final.usage.output_tokens > 0
    row = _row(request_id)
    assert row.door == "messages" and row.stream and row.tool_calls[0]["function"]["name"] == "get_weather"

    follow_up = [
        *ask,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}],
        },
    ]
    answer = claude.messages.create(model=model, max_tokens=200, messages=follow_up, tools=[WEATHER])
    assert answer.stop_reason == "end_turn" and answer.content[0].type == "text"


@pytest.mark.parametrize("model", MODELS)
def test_a_plain_stream_gives_the_sdk_its_text_and_usage(claude, model):
    with claude.messages.stream(model=model, max_tokens=200, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "fake answer" in text and final.content[0].text == text
    assert final.usage.output_tokens > 0 and final.stop_reason == "end_turn"


def test_bearer_auth_and_the_beta_query_work(e2e, alice_key):
    client = anthropic.Anthropic(base_url=e2e.url, auth_token=alice_key, max_retries=0, timeout=30)
    message = client.beta.messages.create(model="gpt-4o-mini", max_tokens=50, messages=HELLO)
    assert message.content[0].text


def test_count_tokens_answers_for_any_model(claude):
    counted = claude.messages.count_tokens(model="gemini-2.5-flash", messages=HELLO, tools=[WEATHER])
    bigger = claude.messages.count_tokens(model="gemini-2.5-flash", messages=HELLO * 5)
    assert counted.input_tokens > 0
    assert (
        bigger.input_tokens
        > claude.messages.count_tokens(model="gemini-2.5-flash", messages=HELLO).input_tokens
    )


def test_models_answer_in_anthropics_shape_to_the_anthropic_sdk(claude):
    page = claude.models.list()
    ids = [m.id for m in page.data]
    assert "claude-sonnet-4-5-20250929" in ids and "gpt-4o-mini" in ids
    assert page.data[0].type == "model" and page.data[0].created_at is not None
    assert claude.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"


@pytest.mark.parametrize("model", MODELS)
def test_a_stream_cut_midway_ends_in_an_error_event_and_is_logged_and_charged(claude, fake_upstream, model):
    upstream_model = {"claude-sonnet-4.5": "claude-sonnet-4-5-20250929"}.get(model, model)
    fake_upstream.control(model=upstream_model, disconnect_after_chunks=3, chunks=8)
    with (
        pytest.raises(anthropic.APIStatusError) as raised,
        claude.messages.stream(model=model, max_tokens=200, messages=HELLO) as stream,
    ):
        request_id = stream.response.headers["X-Request-Id"]
        for _ in stream:
            pass
    assert raised.value.type in ("overloaded_error", "api_error")
    row = _row(request_id)
    assert row.status == "error" and row.error_code == "stream_interrupted"
    assert row.output_tokens > 0 and row.total_cost_usd > 0
    assert not Reservation.objects.filter(request_id=request_id, status="held").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "gpt-4o-mini", "messages": HELLO}, "max_tokens"),
        ({"model": "gpt-4o-mini", "max_tokens": 10}, "messages"),
        ({"model": "gpt-4o-mini", "max_tokens": 10, "messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"model": "gpt-4o-mini", "max_tokens": 10, "messages": HELLO, "temperature": 3}, "temperature"),
        ({"model": "gpt-9", "max_tokens": 10, "messages": HELLO}, "gpt-9"),
    ],
)
def test_bad_input_is_a_4xx_in_anthropics_envelope_and_writes_nothing(
    e2e, alice_key, fake_upstream, body, message
):
    before = _rows()
    response = httpx.post(
        e2e.url + "/v1/messages",
        json=body,
        headers={"x-api-key": alice_key, "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert response.status_code in (400, 404), response.text
    payload = response.json()
    assert payload["type"] == "error" and payload["error"]["type"] in (
        "invalid_request_error",
        "not_found_error",
    )
    assert message in payload["error"]["message"]
    assert payload["request_id"] == response.headers["request-id"]
    assert _rows() == before and fake_upstream.requests() == []


def test_a_missing_anthropic_version_is_a_400(e2e, alice_key):
    response = httpx.post(
        e2e.url + "/v1/messages",
        json={"model": "gpt-4o-mini", "max_tokens": 10, "messages": HELLO},
        headers={"x-api-key": alice_key},
        timeout=30,
    )
    assert response.status_code == 400 and "anthropic-version" in response.json()["error"]["message"]


def test_a_bad_key_raises_the_sdks_authentication_error(e2e):
    client = anthropic.Anthropic(base_url=e2e.url, api_key="amr_nope", max_retries=0, timeout=30)
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(model="gpt-4o-mini", max_tokens=10, messages=HELLO)


def test_a_budget_refusal_is_a_402_billing_error_before_any_call(claude, alice, fake_upstream):
    from budgets.limits import budget_limit_set

    budget_limit_set(user_id=alice.id, limit_usd=Decimal(0))
    with pytest.raises(anthropic.APIStatusError) as raised:
        claude.messages.create(model="gpt-4o-mini", max_tokens=10, messages=HELLO)
    assert raised.value.status_code == 402 and raised.value.type == "billing_error"
    assert fake_upstream.requests() == []


def test_router_headers_choose_fallbacks_on_the_messages_door(claude, fake_upstream):
    fake_upstream.control(model="gpt-4o-mini", status=503)
    raw = claude.messages.with_raw_response.create(
        model="gpt-4o-mini",
        max_tokens=50,
        messages=HELLO,
        extra_headers={"X-Router-Fallbacks": "gemini-2.5-flash"},
    )
    assert raw.headers["X-Router-Model"] == "gemini-2.5-flash"
    row = _row(raw.headers["X-Request-Id"])
    assert [a.model for a in row.attempts.all()] == ["gpt-4o-mini", "gpt-4o-mini", "gemini-2.5-flash"]
