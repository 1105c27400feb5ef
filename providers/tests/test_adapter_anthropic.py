"""Anthropic adapter: request translation, response and stream translation, error classification."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import ChatRequest, ProviderConfig, ProviderError, StreamDelta, Usage

URL = "https://api.anthropic.com/v1/messages"
CONFIG = ProviderConfig(
    name="anthropic", base_url="https://api.anthropic.com/", api_key="sk-ant-secret", timeout_s=30
)
adapter = AnthropicAdapter()
PNG = "iVBORw0KGgo="


def request(**overrides: Any) -> ChatRequest:
    values: dict[str, Any] = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]}
    return ChatRequest(**{**values, **overrides})


def message(content: list[dict[str, Any]], stop_reason: str = "end_turn", usage: dict | None = None) -> dict:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 10, "output_tokens": 5},
    }


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in events)


class CutStream(httpx.AsyncByteStream):
    """A response body that delivers some bytes, then fails like a dropped connection."""

    def __init__(self, chunks: Iterable[bytes], error: Exception) -> None:
        self.chunks = list(chunks)
        self.error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.chunks:
            yield piece
        raise self.error


async def collect(deltas: AsyncIterator[StreamDelta]) -> list[StreamDelta]:
    return [delta async for delta in deltas]


async def sent_body(respx_mock: respx.Router, req: ChatRequest) -> dict[str, Any]:
    route = respx_mock.post(URL).respond(json=message([{"type": "text", "text": "ok"}]))
    await adapter.complete(CONFIG, req)
    return json.loads(route.calls.last.request.content)


MESSAGE_START = {
    "type": "message_start",
    "message": {
        "id": "msg_019Q",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 377,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 1000,
            "output_tokens": 1,
        },
    },
}


def block_delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


# --- request -------------------------------------------------------------------------------------------


async def test_it_posts_to_v1_messages_with_the_key_and_version_headers(respx_mock: respx.Router) -> None:
    route = respx_mock.post(URL).respond(json=message([{"type": "text", "text": "ok"}]))

    await adapter.complete(CONFIG, request())

    sent = route.calls.last.request
    assert str(sent.url) == URL
    assert sent.headers["x-api-key"] == "sk-ant-secret"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers


async def test_it_sends_no_key_header_without_an_api_key(respx_mock: respx.Router) -> None:
    route = respx_mock.post("http://fake:9000/anthropic/v1/messages").respond(json=message([]))

    await adapter.complete(ProviderConfig("anthropic", "http://fake:9000/anthropic", None), request())

    assert "x-api-key" not in route.calls.last.request.headers


async def test_it_moves_system_messages_to_the_top_level_system_field_and_translates_the_conversation(
    respx_mock: respx.Router,
) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "Hi"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call.1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "img"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call.1", "content": '{"label": "cat"}'},
        {"role": "user", "content": "Thanks"},
        {"role": "assistant", "content": "Bonjour   "},
    ]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look it up",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
        }
    ]

    body = await sent_body(respx_mock, request(messages=messages, tools=tools, max_tokens=500))

    assert body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 500,
        "system": [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in French."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Hi"},
                    {"type": "text", "text": "What is this?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": "img"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": '{"label": "cat"}'},
                    {"type": "text", "text": "Thanks"},
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "Bonjour"}]},
        ],
        "tools": [
            {
                "name": "lookup",
                "description": "Look it up",
                "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
            }
        ],
    }


async def test_it_sends_an_http_image_as_a_url_source(respx_mock: respx.Router) -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]

    body = await sent_body(respx_mock, request(messages=[{"role": "user", "content": content}]))

    assert body["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    ]


async def test_it_refuses_content_it_cannot_translate(respx_mock: respx.Router) -> None:
    content = [{"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}]

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request(messages=[{"role": "user", "content": content}]))

    assert (caught.value.status, caught.value.retryable) == (400, False)


async def test_it_defaults_max_tokens_because_anthropic_requires_it(respx_mock: respx.Router) -> None:
    body = await sent_body(respx_mock, request())

    assert body["max_tokens"] == 4096


async def test_it_clamps_temperature_to_one_and_leaves_top_p_out_beside_it(respx_mock: respx.Router) -> None:
    body = await sent_body(respx_mock, request(temperature=1.7, top_p=0.5))

    assert body["temperature"] == 1.0
    assert "top_p" not in body


async def test_it_sends_top_p_when_no_temperature_is_given(respx_mock: respx.Router) -> None:
    body = await sent_body(respx_mock, request(top_p=0.5))

    assert body["top_p"] == 0.5
    assert "temperature" not in body


async def test_it_sends_stop_as_stop_sequences_without_whitespace_only_ones(respx_mock: respx.Router) -> None:
    body = await sent_body(respx_mock, request(stop=["END", "  ", "\n\nHuman:"]))

    assert body["stop_sequences"] == ["END", "\n\nHuman:"]


async def test_it_drops_seed_and_sends_user_as_metadata_unless_it_is_an_email(
    respx_mock: respx.Router,
) -> None:
    assert (await sent_body(respx_mock, request(seed=3, user="u_42")))["metadata"] == {"user_id": "u_42"}
    body = await sent_body(respx_mock, request(seed=3, user="alice@example.com"))
    assert "metadata" not in body
    assert "seed" not in body


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "lookup"}}, {"type": "tool", "name": "lookup"}),
    ],
)
async def test_it_translates_tool_choice(respx_mock: respx.Router, tool_choice: Any, expected: dict) -> None:
    tools = [{"type": "function", "function": {"name": "lookup"}}]

    body = await sent_body(respx_mock, request(tools=tools, tool_choice=tool_choice))

    assert body["tool_choice"] == expected
    assert body["tools"] == [{"name": "lookup", "input_schema": {"type": "object", "properties": {}}}]


async def test_it_starts_with_a_user_turn_when_the_conversation_opens_with_the_assistant(
    respx_mock: respx.Router,
) -> None:
    messages = [{"role": "assistant", "content": "Hello, how can I help?"}, {"role": "user", "content": "Hi"}]

    body = await sent_body(respx_mock, request(messages=messages))

    assert [turn["role"] for turn in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0]["content"] == [{"type": "text", "text": "."}]


async def test_it_declares_a_placeholder_tool_when_history_has_tool_calls_but_no_tools(
    respx_mock: respx.Router,
) -> None:
    call = {"id": "toolu_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "done"},
    ]

    body = await sent_body(respx_mock, request(messages=messages))

    assert [tool["name"] for tool in body["tools"]] == ["placeholder_tool"]
    assert "tool_choice" not in body


async def test_json_mode_forces_a_json_tool_and_returns_its_input_as_content(
    respx_mock: respx.Router,
) -> None:
    route = respx_mock.post(URL).respond(
        json=message(
            [{"type": "tool_use", "id": "toolu_9", "name": "json_tool_call", "input": {"answer": 42}}],
            "tool_use",
        )
    )

    result = await adapter.complete(CONFIG, request(response_format={"type": "json_object"}))

    body = json.loads(route.calls.last.request.content)
    assert body["tools"] == [
        {
            "name": "json_tool_call",
            "description": "Respond with a JSON object.",
            "input_schema": {"type": "object", "additionalProperties": True, "properties": {}},
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "json_tool_call"}
    assert json.loads(result.content or "") == {"answer": 42}
    assert result.finish_reason == "stop"
    assert result.tool_calls is None


async def test_json_schema_mode_uses_the_schema_as_the_json_tool_input_schema(
    respx_mock: respx.Router,
) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}

    body = await sent_body(
        respx_mock,
        request(response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}),
    )

    assert body["tools"][0]["input_schema"] == schema


# --- response ------------------------------------------------------------------------------------------


async def test_it_returns_text_and_tool_calls_with_usage_counting_cache_reads_and_writes(
    respx_mock: respx.Router,
) -> None:
    usage = {
        "input_tokens": 377,
        "output_tokens": 65,
        "cache_creation_input_tokens": 200,
        "cache_read_input_tokens": 1000,
    }
    content = [
        {"type": "text", "text": "I'll check. "},
        {"type": "text", "text": "One moment."},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "Paris"}},
    ]
    respx_mock.post(URL).respond(json=message(content, "tool_use", usage))

    result = await adapter.complete(CONFIG, request())

    assert result.content == "I'll check. One moment."
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == [
        {
            "id": "toolu_01",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
        }
    ]
    assert result.usage == Usage(
        prompt_tokens=1577, completion_tokens=65, cached_tokens=1000, cache_write_tokens=200
    )
    assert result.upstream_model == "claude-sonnet-4-5-20250929"


async def test_a_reply_without_text_has_null_content(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(json=message([]))

    result = await adapter.complete(CONFIG, request())

    assert result.content is None


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
        ("brand_new_reason", "stop"),
    ],
)
async def test_it_maps_stop_reasons_to_openai_finish_reasons(
    respx_mock: respx.Router, stop_reason: str, finish_reason: str
) -> None:
    respx_mock.post(URL).respond(json=message([{"type": "text", "text": "x"}], stop_reason))

    result = await adapter.complete(CONFIG, request())

    assert result.finish_reason == finish_reason


# --- streaming -----------------------------------------------------------------------------------------


async def test_it_streams_text_and_tool_calls_then_the_finish_then_usage(respx_mock: respx.Router) -> None:
    body = sse(
        MESSAGE_START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        block_delta(0, {"type": "text_delta", "text": "I'll check the weather."}),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_01NR", "name": "get_weather", "input": {}},
        },
        block_delta(1, {"type": "input_json_delta", "partial_json": ""}),
        block_delta(1, {"type": "input_json_delta", "partial_json": '{"locati'}),
        block_delta(1, {"type": "input_json_delta", "partial_json": 'on": "Paris"}'}),
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 65},
        },
        {"type": "message_stop"},
    )
    route = respx_mock.post(URL).respond(content=body, headers={"content-type": "text/event-stream"})

    deltas = await collect(adapter.stream(CONFIG, request(stream=True)))

    assert json.loads(route.calls.last.request.content)["stream"] is True
    assert deltas == [
        StreamDelta(content="I'll check the weather."),
        StreamDelta(
            tool_calls=[
                {
                    "index": 0,
                    "id": "toolu_01NR",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        ),
        StreamDelta(tool_calls=[{"index": 0, "function": {"arguments": '{"locati'}}]),
        StreamDelta(tool_calls=[{"index": 0, "function": {"arguments": 'on": "Paris"}'}}]),
        StreamDelta(finish_reason="tool_calls"),
        StreamDelta(
            usage=Usage(prompt_tokens=1477, completion_tokens=65, cached_tokens=1000, cache_write_tokens=100)
        ),
    ]


async def test_it_streams_the_json_tool_input_as_content_in_json_mode(respx_mock: respx.Router) -> None:
    body = sse(
        MESSAGE_START,
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "json_tool_call", "input": {}},
        },
        block_delta(0, {"type": "input_json_delta", "partial_json": '{"a": '}),
        block_delta(0, {"type": "input_json_delta", "partial_json": "1}"}),
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        {"type": "message_stop"},
    )
    respx_mock.post(URL).respond(content=body)

    deltas = await collect(
        adapter.stream(CONFIG, request(stream=True, response_format={"type": "json_object"}))
    )

    assert [d.content for d in deltas if d.content] == ['{"a": ', "1}"]
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]


async def test_an_error_event_mid_stream_raises_an_overload_after_the_text_so_far(
    respx_mock: respx.Router,
) -> None:
    body = sse(
        MESSAGE_START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        block_delta(0, {"type": "text_delta", "text": "Hel"}),
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    respx_mock.post(URL).respond(content=body)

    received: list[StreamDelta] = []
    with pytest.raises(ProviderError) as caught:
        async for delta in adapter.stream(CONFIG, request(stream=True)):
            received.append(delta)

    assert received == [StreamDelta(content="Hel")]
    assert (caught.value.status, caught.value.retryable) == (529, True)
    assert caught.value.extra["mid_stream"] is True
    assert caught.value.extra["usage"].prompt_tokens == 1477
    assert "Overloaded" in caught.value.message


async def test_it_raises_after_yielding_what_arrived_when_the_connection_is_cut(
    respx_mock: respx.Router,
) -> None:
    first = sse(
        MESSAGE_START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        block_delta(0, {"type": "text_delta", "text": "Hel"}),
    )
    stream = CutStream(
        [first, b"event: content_block_delta\ndata: {"], httpx.RemoteProtocolError("incomplete")
    )
    respx_mock.post(URL).mock(return_value=httpx.Response(200, stream=stream))

    received: list[StreamDelta] = []
    with pytest.raises(ProviderError) as caught:
        async for delta in adapter.stream(CONFIG, request(stream=True)):
            received.append(delta)

    assert received == [StreamDelta(content="Hel")]
    assert (caught.value.kind, caught.value.retryable) == ("protocol", True)


async def test_a_stream_without_message_stop_still_finishes_when_the_stop_reason_came(
    respx_mock: respx.Router,
) -> None:
    body = sse(
        MESSAGE_START,
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
    )
    respx_mock.post(URL).respond(content=body)

    deltas = await collect(adapter.stream(CONFIG, request(stream=True)))

    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]


async def test_a_stream_that_ends_before_a_stop_reason_is_a_protocol_error(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(content=sse(MESSAGE_START))

    with pytest.raises(ProviderError) as caught:
        await collect(adapter.stream(CONFIG, request(stream=True)))

    assert (caught.value.kind, caught.value.retryable) == ("protocol", True)


# --- errors --------------------------------------------------------------------------------------------


def anthropic_error(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}, "request_id": "req_011"}


async def test_a_529_overload_is_retryable(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(529, json=anthropic_error("overloaded_error", "Overloaded"))

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.status, caught.value.retryable) == (529, True)
    assert caught.value.extra["category"] == "overloaded"
    assert caught.value.message == "anthropic 529 overloaded_error: Overloaded"


async def test_a_429_carries_its_retry_after(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(
        429,
        json=anthropic_error("rate_limit_error", "Number of requests exceeded"),
        headers={"retry-after": "12"},
    )

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.status, caught.value.retryable, caught.value.retry_after_s) == (429, True, 12.0)


async def test_a_429_without_retry_after_waits_for_the_exhausted_limit_to_reset(
    respx_mock: respx.Router,
) -> None:
    reset = (datetime.now(UTC) + timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
    headers = {
        "anthropic-ratelimit-requests-remaining": "5",
        "anthropic-ratelimit-requests-reset": (datetime.now(UTC) + timedelta(seconds=50)).isoformat(),
        "anthropic-ratelimit-tokens-remaining": "0",
        "anthropic-ratelimit-tokens-reset": reset,
    }
    respx_mock.post(URL).respond(
        429, json=anthropic_error("rate_limit_error", "Too many tokens"), headers=headers
    )

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert caught.value.retry_after_s is not None
    assert 15 <= caught.value.retry_after_s <= 20


async def test_a_spend_cap_429_is_not_retryable(respx_mock: respx.Router) -> None:
    body = anthropic_error("rate_limit_error", "You have reached your specified API usage limits.")
    body["error"]["details"] = {"error_code": "enforced_spend_limit_reached"}
    respx_mock.post(URL).respond(429, json=body)

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert caught.value.retryable is False
    assert caught.value.extra["category"] == "billing"


async def test_a_400_is_not_retryable_and_keeps_the_vendor_message(respx_mock: respx.Router) -> None:
    text = "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
    respx_mock.post(URL).respond(400, json=anthropic_error("invalid_request_error", text))

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.status, caught.value.retryable) == (400, False)
    assert text in caught.value.message
    assert caught.value.extra["type"] == "invalid_request_error"


async def test_a_timeout_is_retryable(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).mock(side_effect=httpx.ReadTimeout("timed out"))

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.kind, caught.value.status, caught.value.retryable) == ("timeout", None, True)


async def test_a_connect_error_is_retryable(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).mock(side_effect=httpx.ConnectError("Connection refused"))

    with pytest.raises(ProviderError) as caught:
        await collect(adapter.stream(CONFIG, request(stream=True)))

    assert (caught.value.kind, caught.value.status, caught.value.retryable) == ("connection", None, True)
