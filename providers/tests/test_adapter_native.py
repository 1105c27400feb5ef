"""Native pass-through: the client's own Messages or Responses body out, the vendor's body and events back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import respx

from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import ChatRequest, ProviderConfig, ProviderError, StreamDelta, Usage
from providers.adapters.deepseek import DeepSeekAdapter
from providers.adapters.openai import OpenAIAdapter

ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
ANTHROPIC = ProviderConfig(name="anthropic", base_url="https://api.anthropic.com", api_key="sk-ant-secret")
RESPONSES_URL = "https://api.openai.com/v1/responses"
OPENAI = ProviderConfig(name="openai", base_url="https://api.openai.com/v1", api_key="sk-secret-123")
CHAT_URL = "https://api.openai.com/v1/chat/completions"

MESSAGES_BODY: dict[str, Any] = {
    "model": "claude-sonnet",  # the client's alias; the adapter sends the upstream model id instead
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    "thinking": {"type": "enabled", "budget_tokens": 512},
    "metadata": {"user_id": "u-1"},
}
RESPONSES_BODY: dict[str, Any] = {
    "model": "smart",
    "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
    "instructions": "Be brief.",
    "reasoning": {"effort": "low"},
    "include": ["reasoning.encrypted_content"],
    "store": False,
}


def messages_request(**overrides: Any) -> ChatRequest:
    values: dict[str, Any] = {
        "model": "claude-sonnet-4-5-20250929",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 1024,
        "native": MESSAGES_BODY,
        "native_headers": {"anthropic-beta": "interleaved-thinking-2025-05-14"},
    }
    return ChatRequest(**{**values, **overrides})


def responses_request(**overrides: Any) -> ChatRequest:
    values: dict[str, Any] = {
        "model": "gpt-5-mini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "native": RESPONSES_BODY,
    }
    return ChatRequest(**{**values, **overrides})


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in events)


def sent_json(route: respx.Route) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls.last.request.content)
    return body


async def collect(deltas: AsyncIterator[StreamDelta]) -> list[StreamDelta]:
    return [delta async for delta in deltas]


def canonical(deltas: list[StreamDelta]) -> list[StreamDelta]:
    """The deltas without their raw bytes, and without the deltas that carried only raw bytes."""
    stripped = [StreamDelta(d.content, d.tool_calls, d.finish_reason, d.usage) for d in deltas]
    return [d for d in stripped if d != StreamDelta()]


# --- Anthropic: complete ---------------------------------------------------------------------------------

CLAUDE_MESSAGE: dict[str, Any] = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "Short.", "signature": "sig"},
        {"type": "text", "text": "Hello!"},
    ],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 20,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 1000,
        "output_tokens": 7,
    },
}


async def test_a_native_messages_body_goes_out_unchanged_but_for_the_model(respx_mock: respx.Router) -> None:
    route = respx_mock.post(ANTHROPIC_URL).respond(json=CLAUDE_MESSAGE)

    await AnthropicAdapter().complete(ANTHROPIC, messages_request())

    assert sent_json(route) == {**MESSAGES_BODY, "model": "claude-sonnet-4-5-20250929"}


async def test_native_messages_forward_anthropic_beta_but_never_the_clients_credentials(
    respx_mock: respx.Router,
) -> None:
    route = respx_mock.post(ANTHROPIC_URL).respond(json=CLAUDE_MESSAGE)
    forwarded = {"Anthropic-Beta": "prompt-caching-2024-07-31", "x-api-key": "sk-client", "host": "evil"}

    await AnthropicAdapter().complete(ANTHROPIC, messages_request(native_headers=forwarded))

    headers = route.calls.last.request.headers
    assert headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert headers["x-api-key"] == "sk-ant-secret"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["host"] == "api.anthropic.com"


async def test_a_native_messages_answer_comes_back_raw_with_usage_and_cache_counts(
    respx_mock: respx.Router,
) -> None:
    respx_mock.post(ANTHROPIC_URL).respond(json=CLAUDE_MESSAGE)

    result = await AnthropicAdapter().complete(ANTHROPIC, messages_request())

    assert result.raw == CLAUDE_MESSAGE
    assert result.content == "Hello!"
    assert result.finish_reason == "stop"
    assert result.usage == Usage(
        prompt_tokens=1120, completion_tokens=7, cached_tokens=1000, cache_write_tokens=100
    )
    assert result.upstream_model == "claude-sonnet-4-5-20250929"


@pytest.mark.parametrize(
    ("asked", "cap", "sent"), [(64000, 8192, 8192), (500, 8192, 500), (None, None, 4096)]
)
async def test_native_max_tokens_never_exceed_the_routers_cap(
    respx_mock: respx.Router, asked: int | None, cap: int | None, sent: int
) -> None:
    route = respx_mock.post(ANTHROPIC_URL).respond(json=CLAUDE_MESSAGE)
    body = {key: value for key, value in MESSAGES_BODY.items() if key != "max_tokens"}
    if asked is not None:
        body["max_tokens"] = asked

    await AnthropicAdapter().complete(ANTHROPIC, messages_request(native=body, max_tokens=cap))

    assert sent_json(route)["max_tokens"] == sent


async def test_a_streaming_clients_body_is_sent_with_stream_false_to_complete(
    respx_mock: respx.Router,
) -> None:
    route = respx_mock.post(ANTHROPIC_URL).respond(json=CLAUDE_MESSAGE)

    await AnthropicAdapter().complete(ANTHROPIC, messages_request(native={**MESSAGES_BODY, "stream": True}))

    assert sent_json(route)["stream"] is False


async def test_a_native_messages_http_error_is_classified_as_before(respx_mock: respx.Router) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    respx_mock.post(ANTHROPIC_URL).respond(529, json=overloaded)

    with pytest.raises(ProviderError) as caught:
        await AnthropicAdapter().complete(ANTHROPIC, messages_request())

    assert caught.value.status == 529
    assert caught.value.retryable is True
    assert caught.value.extra["category"] == "overloaded"


# --- Anthropic: stream -----------------------------------------------------------------------------------

CLAUDE_EVENTS: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            **CLAUDE_MESSAGE,
            "content": [],
            "stop_reason": None,
            "usage": {
                "input_tokens": 20,
                "cache_creation_input_tokens": 100,
                "cache_read_input_tokens": 1000,
                "output_tokens": 1,
            },
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm."}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "ping"},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Let me "}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "check."}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "content_block_start",
        "index": 2,
        "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}},
    },
    {
        "type": "content_block_delta",
        "index": 2,
        "delta": {"type": "input_json_delta", "partial_json": '{"city": "Paris"}'},
    },
    {"type": "content_block_stop", "index": 2},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 42},
    },
    {"type": "message_stop"},
]


async def test_a_native_messages_stream_passes_every_event_through_in_order(respx_mock: respx.Router) -> None:
    route = respx_mock.post(ANTHROPIC_URL).respond(content=sse(*CLAUDE_EVENTS))

    deltas = await collect(AnthropicAdapter().stream(ANTHROPIC, messages_request(stream=True)))

    assert sent_json(route) == {**MESSAGES_BODY, "model": "claude-sonnet-4-5-20250929", "stream": True}
    assert route.calls.last.request.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    raws = [delta.raw for delta in deltas if delta.raw is not None]
    assert raws == [sse(event) for event in CLAUDE_EVENTS]


async def test_a_native_messages_stream_still_yields_the_canonical_deltas(respx_mock: respx.Router) -> None:
    respx_mock.post(ANTHROPIC_URL).respond(content=sse(*CLAUDE_EVENTS))

    deltas = await collect(AnthropicAdapter().stream(ANTHROPIC, messages_request(stream=True)))

    call = {
        "index": 0,
        "id": "toolu_01",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert canonical(deltas) == [
        StreamDelta(content="Let me "),
        StreamDelta(content="check."),
        StreamDelta(tool_calls=[call]),
        StreamDelta(tool_calls=[{"index": 0, "function": {"arguments": '{"city": "Paris"}'}}]),
        StreamDelta(finish_reason="tool_calls"),
        StreamDelta(
            usage=Usage(prompt_tokens=1120, completion_tokens=42, cached_tokens=1000, cache_write_tokens=100)
        ),
    ]
    # The raw bytes ride on the first delta of their event; the usage delta belongs to message_stop too.
    finish = next(delta for delta in deltas if delta.finish_reason)
    assert finish.raw == sse({"type": "message_stop"})


async def test_a_native_messages_stream_error_event_raises_as_before(respx_mock: respx.Router) -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    respx_mock.post(ANTHROPIC_URL).respond(content=sse(*CLAUDE_EVENTS[:8], error))

    received: list[StreamDelta] = []
    with pytest.raises(ProviderError) as caught:
        async for delta in AnthropicAdapter().stream(ANTHROPIC, messages_request(stream=True)):
            received.append(delta)

    assert [delta.raw for delta in received] == [sse(event) for event in CLAUDE_EVENTS[:8]]
    assert caught.value.status == 529
    assert caught.value.retryable is True
    assert caught.value.extra["partial"] is True
    assert caught.value.extra["mid_stream"] is True


# --- OpenAI Responses: complete --------------------------------------------------------------------------


def response_object(output: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1741294021,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "model": "gpt-5-mini-2025-08-07",
        "output": output,
        "usage": {
            "input_tokens": 1100,
            "input_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 0},
            "output_tokens": 46,
            "output_tokens_details": {"reasoning_tokens": 30},
            "total_tokens": 1146,
        },
        **overrides,
    }


REASONING_ITEM = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"}
MESSAGE_ITEM = {
    "type": "message",
    "id": "msg_1",
    "status": "completed",
    "role": "assistant",
    "content": [
        {"type": "output_text", "text": "Hello", "annotations": []},
        {"type": "output_text", "text": " there!", "annotations": []},
    ],
}
CALL_ITEM = {
    "type": "function_call",
    "id": "fc_1",
    "call_id": "call_abc",
    "name": "get_weather",
    "arguments": '{"city":"Paris"}',
    "status": "completed",
}


async def test_a_native_responses_body_goes_to_responses_unchanged_but_for_the_model(
    respx_mock: respx.Router,
) -> None:
    route = respx_mock.post(RESPONSES_URL).respond(json=response_object([MESSAGE_ITEM]))

    await OpenAIAdapter().complete(OPENAI, responses_request())

    assert sent_json(route) == {**RESPONSES_BODY, "model": "gpt-5-mini"}
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-secret-123"


async def test_a_native_response_comes_back_raw_with_text_and_usage(respx_mock: respx.Router) -> None:
    body = response_object([REASONING_ITEM, MESSAGE_ITEM])
    respx_mock.post(RESPONSES_URL).respond(json=body)

    result = await OpenAIAdapter().complete(OPENAI, responses_request())

    assert result.raw == body
    assert result.content == "Hello there!"
    assert result.finish_reason == "stop"
    assert result.tool_calls is None
    assert result.usage == Usage(
        prompt_tokens=1100, completion_tokens=46, cached_tokens=1024, reasoning_tokens=30
    )
    assert result.upstream_model == "gpt-5-mini-2025-08-07"


async def test_a_native_function_call_becomes_an_openai_tool_call_named_by_call_id(
    respx_mock: respx.Router,
) -> None:
    respx_mock.post(RESPONSES_URL).respond(json=response_object([REASONING_ITEM, CALL_ITEM]))

    result = await OpenAIAdapter().complete(OPENAI, responses_request())

    assert result.content is None
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == [
        {
            "id": "call_abc",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
    ]


@pytest.mark.parametrize(
    ("reason", "finish"), [("max_output_tokens", "length"), ("content_filter", "content_filter")]
)
async def test_an_incomplete_response_maps_its_reason(
    respx_mock: respx.Router, reason: str, finish: str
) -> None:
    body = response_object([MESSAGE_ITEM], status="incomplete", incomplete_details={"reason": reason})
    respx_mock.post(RESPONSES_URL).respond(json=body)

    result = await OpenAIAdapter().complete(OPENAI, responses_request())

    assert result.finish_reason == finish
    assert result.content == "Hello there!"


async def test_a_failed_response_is_a_classified_provider_error(respx_mock: respx.Router) -> None:
    error = {"code": "rate_limit_exceeded", "message": "Slow down."}
    respx_mock.post(RESPONSES_URL).respond(json=response_object([], status="failed", error=error))

    with pytest.raises(ProviderError) as caught:
        await OpenAIAdapter().complete(OPENAI, responses_request())

    assert "Slow down." in caught.value.message
    assert caught.value.extra["category"] == "rate_limit"
    assert caught.value.retryable is True


async def test_native_max_output_tokens_never_exceed_the_routers_cap(respx_mock: respx.Router) -> None:
    route = respx_mock.post(RESPONSES_URL).respond(json=response_object([MESSAGE_ITEM]))

    await OpenAIAdapter().complete(
        OPENAI, responses_request(native={**RESPONSES_BODY, "max_output_tokens": 100000}, max_tokens=2000)
    )

    assert sent_json(route)["max_output_tokens"] == 2000


async def test_a_native_responses_http_error_is_classified_like_chat(respx_mock: respx.Router) -> None:
    error = {
        "error": {"message": "Rate limit", "type": "requests", "param": None, "code": "rate_limit_exceeded"}
    }
    respx_mock.post(RESPONSES_URL).respond(429, json=error, headers={"retry-after": "3"})

    with pytest.raises(ProviderError) as caught:
        await OpenAIAdapter().complete(OPENAI, responses_request())

    assert caught.value.status == 429
    assert caught.value.retry_after_s == 3
    assert caught.value.retryable is True


# --- OpenAI Responses: stream ----------------------------------------------------------------------------


def numbered(*events: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]


OPENING = response_object([], status="in_progress", usage=None)
TEXT_EVENTS = numbered(
    {"type": "response.created", "response": OPENING},
    {"type": "response.in_progress", "response": OPENING},
    {"type": "response.output_item.added", "output_index": 0, "item": {**REASONING_ITEM}},
    {"type": "response.output_item.done", "output_index": 0, "item": {**REASONING_ITEM}},
    {
        "type": "response.output_item.added",
        "output_index": 1,
        "item": {**MESSAGE_ITEM, "status": "in_progress", "content": []},
    },
    {
        "type": "response.content_part.added",
        "item_id": "msg_1",
        "output_index": 1,
        "content_index": 0,
        "part": {"type": "output_text", "text": "", "annotations": []},
    },
    *(
        {
            "type": "response.output_text.delta",
            "item_id": "msg_1",
            "output_index": 1,
            "content_index": 0,
            "delta": piece,
            "logprobs": [],
        }
        for piece in ("Hello", " there!")
    ),
    {
        "type": "response.output_text.done",
        "item_id": "msg_1",
        "output_index": 1,
        "content_index": 0,
        "text": "Hello there!",
        "logprobs": [],
    },
    {"type": "response.output_item.done", "output_index": 1, "item": MESSAGE_ITEM},
    {"type": "response.completed", "response": response_object([REASONING_ITEM, MESSAGE_ITEM])},
)
CALL_EVENTS = numbered(
    {"type": "response.created", "response": OPENING},
    {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": {**CALL_ITEM, "status": "in_progress", "arguments": ""},
    },
    {
        "type": "response.function_call_arguments.delta",
        "item_id": "fc_1",
        "output_index": 0,
        "delta": '{"city":',
    },
    {
        "type": "response.function_call_arguments.delta",
        "item_id": "fc_1",
        "output_index": 0,
        "delta": '"Paris"}',
    },
    {
        "type": "response.function_call_arguments.done",
        "item_id": "fc_1",
        "output_index": 0,
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    },
    {"type": "response.output_item.done", "output_index": 0, "item": CALL_ITEM},
    {"type": "response.completed", "response": response_object([CALL_ITEM])},
)
USAGE = Usage(prompt_tokens=1100, completion_tokens=46, cached_tokens=1024, reasoning_tokens=30)


async def test_a_native_responses_stream_passes_every_event_through_in_order(
    respx_mock: respx.Router,
) -> None:
    route = respx_mock.post(RESPONSES_URL).respond(content=sse(*TEXT_EVENTS))

    deltas = await collect(OpenAIAdapter().stream(OPENAI, responses_request(stream=True)))

    assert sent_json(route) == {**RESPONSES_BODY, "model": "gpt-5-mini", "stream": True}
    assert [delta.raw for delta in deltas if delta.raw is not None] == [sse(event) for event in TEXT_EVENTS]
    assert canonical(deltas) == [
        StreamDelta(content="Hello"),
        StreamDelta(content=" there!"),
        StreamDelta(finish_reason="stop"),
        StreamDelta(usage=USAGE),
    ]


async def test_a_native_responses_stream_turns_function_call_items_into_tool_call_deltas(
    respx_mock: respx.Router,
) -> None:
    respx_mock.post(RESPONSES_URL).respond(content=sse(*CALL_EVENTS))

    deltas = await collect(OpenAIAdapter().stream(OPENAI, responses_request(stream=True)))

    first = {
        "index": 0,
        "id": "call_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert canonical(deltas) == [
        StreamDelta(tool_calls=[first]),
        StreamDelta(tool_calls=[{"index": 0, "function": {"arguments": '{"city":'}}]),
        StreamDelta(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}]),
        StreamDelta(finish_reason="tool_calls"),
        StreamDelta(usage=USAGE),
    ]
    assert len([delta for delta in deltas if delta.raw]) == len(CALL_EVENTS)


async def test_arguments_sent_only_in_the_done_event_still_reach_the_tool_call(
    respx_mock: respx.Router,
) -> None:
    events = [event for event in CALL_EVENTS if event["type"] != "response.function_call_arguments.delta"]
    respx_mock.post(RESPONSES_URL).respond(content=sse(*events))

    deltas = await collect(OpenAIAdapter().stream(OPENAI, responses_request(stream=True)))

    fragments = [
        call["function"]["arguments"]
        for delta in deltas
        for call in delta.tool_calls or []
        if "id" not in call
    ]
    assert fragments == ['{"city":"Paris"}']


async def test_an_incomplete_responses_stream_finishes_with_length(respx_mock: respx.Router) -> None:
    incomplete = response_object(
        [MESSAGE_ITEM], status="incomplete", incomplete_details={"reason": "max_output_tokens"}
    )
    events = [
        *TEXT_EVENTS[:-1],
        {"type": "response.incomplete", "sequence_number": 11, "response": incomplete},
    ]
    respx_mock.post(RESPONSES_URL).respond(content=sse(*events))

    deltas = await collect(OpenAIAdapter().stream(OPENAI, responses_request(stream=True)))

    assert canonical(deltas)[-2:] == [StreamDelta(finish_reason="length"), StreamDelta(usage=USAGE)]
    assert deltas[-2].raw == sse(events[-1])


async def test_a_response_failed_mid_stream_raises_a_partial_provider_error(respx_mock: respx.Router) -> None:
    failed = response_object(
        [], status="failed", error={"code": "server_error", "message": "The model crashed."}
    )
    events = [*TEXT_EVENTS[:7], {"type": "response.failed", "sequence_number": 7, "response": failed}]
    respx_mock.post(RESPONSES_URL).respond(content=sse(*events))

    received: list[StreamDelta] = []
    with pytest.raises(ProviderError) as caught:
        async for delta in OpenAIAdapter().stream(OPENAI, responses_request(stream=True)):
            received.append(delta)

    assert [delta.raw for delta in received] == [sse(event) for event in TEXT_EVENTS[:7]]
    assert "The model crashed." in caught.value.message
    assert caught.value.retryable is True
    assert caught.value.extra["partial"] is True
    assert caught.value.extra["mid_stream"] is True
    assert caught.value.extra["usage"] == USAGE


async def test_an_error_event_mid_stream_raises_a_provider_error(respx_mock: respx.Router) -> None:
    error = {"type": "error", "sequence_number": 3, "code": "invalid_prompt", "message": "No.", "param": None}
    respx_mock.post(RESPONSES_URL).respond(content=sse(*TEXT_EVENTS[:3], error))

    with pytest.raises(ProviderError) as caught:
        await collect(OpenAIAdapter().stream(OPENAI, responses_request(stream=True)))

    assert "No." in caught.value.message
    assert caught.value.retryable is False
    assert caught.value.extra["code"] == "invalid_prompt"


async def test_a_responses_stream_that_ends_without_a_terminal_event_is_incomplete(
    respx_mock: respx.Router,
) -> None:
    respx_mock.post(RESPONSES_URL).respond(content=sse(*TEXT_EVENTS[:8]))

    with pytest.raises(ProviderError) as caught:
        await collect(OpenAIAdapter().stream(OPENAI, responses_request(stream=True)))

    assert caught.value.kind == "protocol"
    assert caught.value.extra["partial"] is True


# --- DeepSeek has no Responses API ------------------------------------------------------------------------


async def test_a_deepseek_request_never_goes_native(respx_mock: respx.Router) -> None:
    chat = {
        "id": "1",
        "object": "chat.completion",
        "model": "deepseek-chat",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    route = respx_mock.post("https://api.deepseek.com/chat/completions").respond(json=chat)
    config = ProviderConfig(name="deepseek", base_url="https://api.deepseek.com", api_key="sk-ds")

    result = await DeepSeekAdapter().complete(config, responses_request(model="deepseek-chat"))

    assert sent_json(route)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert "input" not in sent_json(route)
    assert result.raw is None


async def test_a_deepseek_stream_never_goes_native(respx_mock: respx.Router) -> None:
    chunk = {"id": "1", "object": "chat.completion.chunk", "model": "deepseek-chat"}
    body = (
        f"data: {json.dumps({**chunk, 'choices': [{'index': 0, 'delta': {'content': 'ok'}}]})}\n\n"
        f"data: {json.dumps({**chunk, 'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n"
        "data: [DONE]\n\n"
    )
    route = respx_mock.post("https://api.deepseek.com/chat/completions").respond(content=body.encode())
    config = ProviderConfig(name="deepseek", base_url="https://api.deepseek.com", api_key="sk-ds")

    deltas = await collect(
        DeepSeekAdapter().stream(config, responses_request(model="deepseek-chat", stream=True))
    )

    assert sent_json(route)["stream_options"] == {"include_usage": True}
    assert deltas == [StreamDelta(content="ok"), StreamDelta(finish_reason="stop")]


async def test_an_openai_request_without_a_native_body_still_goes_to_chat(respx_mock: respx.Router) -> None:
    chat = {
        "id": "1",
        "object": "chat.completion",
        "model": "gpt-5-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    route = respx_mock.post(CHAT_URL).respond(json=chat)

    result = await OpenAIAdapter().complete(OPENAI, responses_request(native=None))

    assert route.called
    assert result.raw is None
