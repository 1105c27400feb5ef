"""End to end: the official openai SDK against a live gateway in front of the fake upstream."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import openai
import pytest

from budgets.models import Budget, Reservation
from providers.models import ModelPrice
from routing.models import Attempt, GatewayRequest

pytestmark = pytest.mark.e2e
HELLO = [{"role": "user", "content": "What is the capital of France?"}]


def _row(request_id: str) -> GatewayRequest:
    return GatewayRequest.objects.get(pk=request_id)


def test_the_sdk_gets_our_answer_with_router_fields(sdk):
    response = sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert response.choices[0].message.content.startswith("This is a fake answer from gpt-4o-mini")
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "gpt-4o-mini"
    assert response.model_extra["provider"] == "openai"
    assert response.usage.model_extra["total_cost_usd"] > 0
    assert response.id.startswith("req_")
    row = _row(response.id)
    assert row.status == "success" and row.provider == "openai"
    assert row.attempts.count() == 1


@pytest.mark.parametrize(
    ("model", "provider", "path"),
    [
        ("gpt-4o-mini", "openai", "/v1/chat/completions"),
        ("claude-sonnet-4.5", "anthropic", "/v1/messages"),
        ("gemini-2.5-flash", "google", "/v1beta/models/gemini-2.5-flash:generateContent"),
        ("deepseek-chat", "deepseek", "/chat/completions"),
    ],
)
def test_each_provider_receives_its_own_wire_format_and_we_answer_in_openais(
    sdk, fake_upstream, model, provider, path
):
    messages = [{"role": "system", "content": "Be brief."}, *HELLO]
    response = sdk.chat.completions.create(model=model, messages=messages, max_tokens=50, temperature=0.3)
    received = fake_upstream.requests()
    assert len(received) == 1
    assert received[0]["path"] == path
    body = received[0]["body"]
    if provider == "anthropic":
        assert body["model"] == "claude-sonnet-4-5-20250929"
        assert body["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
        assert body["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": HELLO[0]["content"]}]}
        ] or body["messages"] == [{"role": "user", "content": HELLO[0]["content"]}]
        assert body["max_tokens"] == 50
    elif provider == "google":
        assert body["systemInstruction"]["parts"][0]["text"] == "Be brief."
        assert body["contents"][0]["role"] == "user"
        assert body["generationConfig"]["maxOutputTokens"] == 50
    else:
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert body.get("max_completion_tokens", body.get("max_tokens")) == 50
    assert response.object == "chat.completion"
    assert response.model_extra["provider"] == provider
    assert response.choices[0].message.role == "assistant"


@pytest.mark.parametrize("model", ["gpt-4o", "claude-sonnet-4-5-20250929", "gemini-2.5-pro", "deepseek-chat"])
def test_the_log_row_costs_exactly_tokens_times_the_price_rows_rates(sdk, fake_upstream, model):
    fake_upstream.control(model=model, cached_tokens=4)
    response = sdk.chat.completions.create(model=model, messages=HELLO * 3)
    row = _row(response.id)
    price = ModelPrice.objects.get(pk=row.price_id)
    million = Decimal(1_000_000)
    cached_rate = price.cached_input_per_1m if price.cached_input_per_1m is not None else price.input_per_1m
    assert row.cached_tokens == 4
    expected_input = (Decimal(row.input_tokens - 4) * price.input_per_1m + 4 * cached_rate) / million
    expected_output = Decimal(row.output_tokens) * price.output_per_1m / million
    assert row.input_cost_usd == expected_input
    assert row.output_cost_usd == expected_output
    assert row.total_cost_usd == expected_input + expected_output
    assert Decimal(str(response.usage.model_extra["total_cost_usd"])) == row.total_cost_usd


def test_streaming_with_include_usage_ends_with_the_usage_chunk_and_costs(sdk):
    stream = sdk.chat.completions.create(
        model="claude-sonnet-4.5", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("This is a fake answer from claude-sonnet-4-5-20250929")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1]
    assert usage.choices == [] and usage.usage.completion_tokens > 0
    row = _row(chunks[0].id)
    assert Decimal(str(usage.usage.model_extra["total_cost_usd"])) == row.total_cost_usd > 0
    assert row.response_text == text and row.stream is True


def test_errors_raise_the_right_sdk_exceptions(sdk, e2e):
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.chat.completions.create(model="gpt-9", messages=HELLO)
    assert bad.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="gpt-4o-mini", messages=[])
    stranger = openai.OpenAI(base_url=e2e.url + "/v1", api_key="amr_nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert GatewayRequest.objects.count() == 0  # bad input writes nothing


def test_a_429_with_retry_after_is_retried_then_succeeds(sdk, fake_upstream):
    fake_upstream.control(model="gpt-4o-mini", status=429, times=1, retry_after=1)
    response = sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    attempts = response.model_extra["attempts"]
    assert [a["status"] for a in attempts] == ["error", "success"]
    assert attempts[0]["status_code"] == 429
    assert len(fake_upstream.requests()) == 2
    assert Attempt.objects.filter(request_id=response.id).count() == 2


def test_two_500s_then_success_on_the_same_model(sdk, fake_upstream):
    fake_upstream.control(model="gemini-2.5-flash", status=500, times=2)
    response = sdk.chat.completions.create(model="gemini-2.5-flash", messages=HELLO)
    assert [a["status_code"] for a in response.model_extra["attempts"]] == [500, 500, 200]
    assert response.model == "gemini-2.5-flash"


def test_a_529_falls_back_to_the_next_candidate(sdk, fake_upstream):
    fake_upstream.control(model="claude-sonnet-4-5-20250929", status=529)
    response = sdk.chat.completions.create(
        model="claude-sonnet-4.5", messages=HELLO, extra_body={"fallbacks": ["gpt-4o-mini"]}
    )
    assert response.model == "gpt-4o-mini"
    attempts = response.model_extra["attempts"]
    assert [(a["model"], a["status"]) for a in attempts] == [
        ("claude-sonnet-4-5-20250929", "error"),
        ("claude-sonnet-4-5-20250929", "error"),
        ("gpt-4o-mini", "success"),
    ]
    row = _row(response.id)
    assert row.model == "gpt-4o-mini" and row.attempts.count() == 3
    # the failed model's reservation was released, the answering one's settled at the actual cost
    reservations = Reservation.objects.filter(request_id=response.id)
    assert sorted(r.status for r in reservations) == ["released", "settled"]
    assert Budget.objects.get(user=row.user).spent_usd == row.total_cost_usd
    assert Budget.objects.get(user=row.user).reserved_usd == 0


def test_a_provider_400_is_not_retried(sdk, fake_upstream):
    fake_upstream.control(model="gpt-4o-mini", status=400, message="bad image")
    with pytest.raises(openai.BadRequestError) as error:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO, extra_body={"fallbacks": ["gpt-4o"]})
    assert len(fake_upstream.requests()) == 1
    assert error.value.body["attempts"][0]["status_code"] == 400
    row = GatewayRequest.objects.get()
    assert row.status == "error" and row.http_status == 400 and row.total_cost_usd == 0


def test_a_timeout_gives_504_listing_the_attempts(sdk, fake_upstream):
    fake_upstream.control(model="deepseek-chat", delay_ms=4000)
    with pytest.raises(openai.APIStatusError) as error:
        sdk.chat.completions.create(model="deepseek-chat", messages=HELLO)
    assert error.value.status_code == 504
    assert error.value.body["type"] == "upstream_timeout"
    assert len(error.value.body["attempts"]) == 3
    assert GatewayRequest.objects.get().http_status == 504


def test_every_candidate_failing_gives_502_listing_each_attempt(sdk, fake_upstream):
    fake_upstream.control(model="*", status=503)
    with pytest.raises(openai.InternalServerError) as error:
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, extra_body={"fallbacks": ["claude-3-5-haiku-20241022"]}
        )
    assert error.value.status_code == 502
    attempts = error.value.body["attempts"]
    assert [(a["model"], a["status_code"]) for a in attempts] == [
        ("gpt-4o-mini", 503),
        ("gpt-4o-mini", 503),
        ("claude-3-5-haiku-20241022", 503),
    ]
    row = GatewayRequest.objects.get()
    assert row.status == "error" and row.attempts.count() == 3
    assert Reservation.objects.filter(status="open").count() == 0


def test_a_stream_cut_after_three_chunks_ends_with_an_error_chunk_and_is_logged(
    e2e, alice_key, fake_upstream
):
    fake_upstream.control(model="gpt-4o-mini", disconnect_after_chunks=3)
    with httpx.stream(
        "POST",
        e2e.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {alice_key}"},
        json={"model": "gpt-4o-mini", "messages": HELLO, "stream": True},
        timeout=30,
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert '"error"' in lines[-2]
    contents = [line for line in lines if '"content"' in line]
    assert len(contents) >= 3
    row = _row(response.headers["X-Request-Id"])
    assert row.status == "error" and row.error_code == "stream_interrupted"
    assert row.response_text.startswith("This is a")
    assert row.output_tokens > 0 and row.total_cost_usd > 0  # charged for what was generated


def test_a_stream_that_fails_before_the_first_byte_falls_back(sdk, fake_upstream):
    fake_upstream.control(model="gpt-4o", status=503)
    stream = sdk.chat.completions.create(
        model="gpt-4o", messages=HELLO, stream=True, extra_body={"fallbacks": ["deepseek-chat"]}
    )
    chunks = list(stream)
    assert chunks[0].model == "deepseek-chat"


def test_cost_optimized_picks_the_cheapest_model_that_fits(sdk):
    response = sdk.chat.completions.create(model="auto", messages=HELLO)
    assert response.model_extra["selection_mode"] == "cost-optimized"
    # gemini-2.0-flash and -flash-lite tie on price (0.10 / 0.40); unobserved latency ties; id breaks it
    assert response.model == "gemini-2.0-flash"
    assert response.model_extra["models_considered"] == 14


def test_cost_optimized_skips_a_model_without_a_requested_capability(sdk):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    response = sdk.chat.completions.create(
        model="auto",
        messages=HELLO,
        tools=tools,
        extra_body={"models": ["deepseek-reasoner", "gpt-4o"]},
    )
    assert response.model == "gpt-4o"  # deepseek-reasoner is cheaper but has no tool support


def test_tool_calls_come_back_in_openais_shape(sdk):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    response = sdk.chat.completions.create(
        model="claude-sonnet-4.5",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=tools,
    )
    call = response.choices[0].message.tool_calls[0]
    assert response.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris"}
    row = _row(response.id)  # the call is in the log, not an empty response
    assert row.finish_reason == "tool_calls" and row.response_text == ""
    assert row.tool_calls == [call.model_dump(exclude_none=True)]


def test_the_response_headers_name_model_provider_cost_and_cache(e2e, alice_key):
    response = httpx.post(
        e2e.url + "/v1/chat/completions",
        headers={"X-API-Key": alice_key},
        json={"model": "gpt-4o-mini", "messages": HELLO},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == response.json()["id"]
    assert response.headers["X-Router-Model"] == "gpt-4o-mini"
    assert response.headers["X-Router-Provider"] == "openai"
    assert Decimal(response.headers["X-Router-Cost-Usd"]) == _row(response.json()["id"]).total_cost_usd
    assert response.headers["X-Router-Cache"] == "miss"
    assert '"total_cost_usd":0.0000' in response.text  # positional, never 1e-05
