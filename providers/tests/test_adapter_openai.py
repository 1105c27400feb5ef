"""OpenAI adapter: outgoing requests, parsed answers, streams and error classification, against respx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

from providers.adapters import get_adapter
from providers.adapters.base import ChatRequest, ProviderConfig, ProviderError, StreamDelta, Usage
from providers.adapters.openai import OpenAIAdapter

URL = "https://api.openai.com/v1/chat/completions"
CONFIG = ProviderConfig(
    name="openai", base_url="https://api.openai.com/v1/", api_key="sk-secret-123", timeout_s=30
)
adapter = OpenAIAdapter()


def request(**overrides: Any) -> ChatRequest:
    values: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    return ChatRequest(**{**values, **overrides})


def completion(message: dict[str, Any], finish_reason: str = "stop", usage: dict | None = None) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage or {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def sse(*events: dict[str, Any] | str) -> bytes:
    return b"".join(
        f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n".encode() for event in events
    )


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-X",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


USAGE_CHUNK = {
    "id": "chatcmpl-X",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-4o",
    "choices": [],
    "usage": {
        "prompt_tokens": 79,
        "completion_tokens": 3,
        "total_tokens": 82,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}


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


def sent_json(route: respx.Route) -> dict[str, Any]:
    return json.loads(route.calls.last.request.content)


# --- registry ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["openai", "anthropic", "google", "deepseek"])
def test_the_registry_has_an_adapter_for_each_provider(name: str) -> None:
    assert get_adapter(name).name == name


def test_the_registry_refuses_an_unknown_provider() -> None:
    with pytest.raises(KeyError):
        get_adapter("mistral")


# --- request ---------------------------------------------------------------------------------------


async def test_it_posts_the_request_through_to_chat_completions_under_the_v1_base(
    respx_mock: respx.Router,
) -> None:
    route = respx_mock.post(URL).respond(json=completion({"role": "assistant", "content": "ok"}))
    messages = [
        {"role": "developer", "content": "Be terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            ],
        },
    ]
    tools = [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    ]

    await adapter.complete(
        CONFIG,
        request(
            messages=messages,
            max_tokens=100,
            temperature=1.5,
            top_p=0.9,
            stop=["END"],
            seed=7,
            user="u1",
            tools=tools,
            tool_choice="auto",
            response_format={"type": "json_object"},
        ),
    )

    sent = route.calls.last.request
    assert str(sent.url) == URL
    assert sent.headers["authorization"] == "Bearer sk-secret-123"
    assert sent.headers["content-type"] == "application/json"
    assert sent_json(route) == {
        "model": "gpt-4o-mini",
        "messages": messages,
        "max_completion_tokens": 100,
        "temperature": 1.5,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
        "user": "u1",
        "tools": tools,
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
    }


async def test_it_sends_only_the_fields_that_were_set(respx_mock: respx.Router) -> None:
    route = respx_mock.post(URL).respond(json=completion({"role": "assistant", "content": "ok"}))

    await adapter.complete(CONFIG, request())

    assert sent_json(route) == {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


async def test_it_sends_no_authorization_header_without_an_api_key(respx_mock: respx.Router) -> None:
    route = respx_mock.post("http://fake:9000/v1/chat/completions").respond(
        json=completion({"role": "assistant", "content": "ok"})
    )

    await adapter.complete(ProviderConfig("openai", "http://fake:9000/v1", None), request())

    assert "authorization" not in route.calls.last.request.headers


async def test_it_asks_for_usage_in_streams(respx_mock: respx.Router) -> None:
    route = respx_mock.post(URL).respond(content=sse(chunk({}, "stop"), "[DONE]"))

    await collect(adapter.stream(CONFIG, request(stream=True)))

    body = sent_json(route)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


# --- response ---------------------------------------------------------------------------------------


async def test_it_returns_content_finish_reason_and_usage_with_cached_and_reasoning_tokens(
    respx_mock: respx.Router,
) -> None:
    usage = {
        "prompt_tokens": 1117,
        "completion_tokens": 46,
        "total_tokens": 1163,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 30},
    }
    respx_mock.post(URL).respond(json=completion({"role": "assistant", "content": "Hello!"}, "length", usage))

    result = await adapter.complete(CONFIG, request())

    assert result.content == "Hello!"
    assert result.finish_reason == "length"
    assert result.usage == Usage(
        prompt_tokens=1117, completion_tokens=46, cached_tokens=1024, reasoning_tokens=30
    )
    assert result.usage.total_tokens == 1163
    assert result.upstream_model == "gpt-4o-mini-2024-07-18"
    assert result.tool_calls is None


async def test_it_returns_tool_calls_in_openai_shape(respx_mock: respx.Router) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    respx_mock.post(URL).respond(
        json=completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls")
    )

    result = await adapter.complete(CONFIG, request())

    assert result.content is None
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == [call]


async def test_it_maps_an_unknown_finish_reason_to_stop(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(json=completion({"role": "assistant", "content": "x"}, "something_new"))

    result = await adapter.complete(CONFIG, request())

    assert result.finish_reason == "stop"


async def test_a_success_without_choices_is_a_retryable_protocol_error(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(json={"id": "x", "choices": []})

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert caught.value.kind == "protocol"
    assert caught.value.retryable is True


# --- streaming ---------------------------------------------------------------------------------------


async def test_it_streams_content_then_the_finish_then_usage_last(respx_mock: respx.Router) -> None:
    body = sse(
        chunk({"role": "assistant", "content": "", "refusal": None}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
        USAGE_CHUNK,
        "[DONE]",
    )
    respx_mock.post(URL).respond(content=body, headers={"content-type": "text/event-stream"})

    deltas = await collect(adapter.stream(CONFIG, request(stream=True)))

    assert deltas == [
        StreamDelta(content="Hel"),
        StreamDelta(content="lo"),
        StreamDelta(finish_reason="stop"),
        StreamDelta(usage=Usage(prompt_tokens=79, completion_tokens=3, cached_tokens=64)),
    ]


async def test_it_streams_tool_call_fragments_with_their_index(respx_mock: respx.Router) -> None:
    first = {
        "index": 0,
        "id": "call_4X",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    body = sse(
        chunk({"role": "assistant", "content": None, "tool_calls": [first]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk({}, "tool_calls"),
        "[DONE]",
    )
    respx_mock.post(URL).respond(content=body)

    deltas = await collect(adapter.stream(CONFIG, request(stream=True)))

    assert deltas == [
        StreamDelta(tool_calls=[first]),
        StreamDelta(tool_calls=[{"index": 0, "function": {"arguments": '{"city":'}}]),
        StreamDelta(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}]),
        StreamDelta(finish_reason="tool_calls"),
    ]


async def test_it_raises_an_error_event_sent_mid_stream(respx_mock: respx.Router) -> None:
    error = {
        "error": {"message": "The server had an error", "type": "server_error", "param": None, "code": None}
    }
    respx_mock.post(URL).respond(content=sse(chunk({"content": "Hi"}), error))

    received: list[StreamDelta] = []
    with pytest.raises(ProviderError) as caught:
        async for delta in adapter.stream(CONFIG, request(stream=True)):
            received.append(delta)

    assert received == [StreamDelta(content="Hi")]
    assert "The server had an error" in caught.value.message
    assert caught.value.retryable is True
    assert caught.value.extra["partial"] is True


async def test_it_raises_after_yielding_what_arrived_when_the_connection_is_cut(
    respx_mock: respx.Router,
) -> None:
    body = CutStream(
        [sse(chunk({"content": "Hel"})), b'data: {"id":"chatcmpl-X","choi'],
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    )
    respx_mock.post(URL).mock(return_value=httpx.Response(200, stream=body))

    received: list[StreamDelta] = []
    with pytest.raises(ProviderError) as caught:
        async for delta in adapter.stream(CONFIG, request(stream=True)):
            received.append(delta)

    assert received == [StreamDelta(content="Hel")]
    assert caught.value.kind == "protocol"
    assert caught.value.status is None
    assert caught.value.retryable is True
    assert caught.value.extra["partial"] is True


async def test_a_read_error_mid_stream_is_a_retryable_connection_error(respx_mock: respx.Router) -> None:
    body = CutStream([sse(chunk({"content": "Hel"}))], httpx.ReadError("connection reset"))
    respx_mock.post(URL).mock(return_value=httpx.Response(200, stream=body))

    with pytest.raises(ProviderError) as caught:
        await collect(adapter.stream(CONFIG, request(stream=True)))

    assert caught.value.kind == "connection"
    assert caught.value.retryable is True


async def test_a_stream_that_ends_without_a_finish_reason_is_a_protocol_error(
    respx_mock: respx.Router,
) -> None:
    respx_mock.post(URL).respond(content=sse(chunk({"content": "Hel"})))

    received: list[StreamDelta] = []
    with pytest.raises(ProviderError) as caught:
        async for delta in adapter.stream(CONFIG, request(stream=True)):
            received.append(delta)

    assert received == [StreamDelta(content="Hel")]
    assert caught.value.kind == "protocol"
    assert caught.value.retryable is True


async def test_a_stream_refused_before_it_starts_raises_the_classified_error(
    respx_mock: respx.Router,
) -> None:
    respx_mock.post(URL).respond(
        429,
        json={
            "error": {
                "message": "Rate limit reached",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
        headers={"retry-after": "3"},
    )

    with pytest.raises(ProviderError) as caught:
        await collect(adapter.stream(CONFIG, request(stream=True)))

    assert caught.value.status == 429
    assert caught.value.retryable is True
    assert caught.value.retry_after_s == 3
    assert caught.value.extra["partial"] is False
    assert "Rate limit reached" in caught.value.message


# --- errors ---------------------------------------------------------------------------------------


def openai_error(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


async def test_a_429_with_retry_after_is_retryable_after_that_delay(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(
        429,
        json=openai_error("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
        headers={"retry-after": "7"},
    )

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    error = caught.value
    assert (error.status, error.retryable, error.retry_after_s, error.kind) == (429, True, 7.0, "http")
    assert error.extra["category"] == "rate_limit"
    assert error.message == "openai 429 requests: Rate limit reached for requests"


async def test_retry_after_ms_wins_over_retry_after(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(
        429,
        json=openai_error("slow down", "requests"),
        headers={"retry-after-ms": "1500", "retry-after": "9"},
    )

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert caught.value.retry_after_s == 1.5


async def test_retry_after_may_be_an_http_date(respx_mock: respx.Router) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    respx_mock.post(URL).respond(
        503, json=openai_error("overloaded", "service_unavailable_error"), headers={"retry-after": when}
    )

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert caught.value.retry_after_s is not None
    assert 25 <= caught.value.retry_after_s <= 30
    assert caught.value.extra["category"] == "overloaded"


async def test_a_429_for_exhausted_quota_is_not_retryable(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(
        429, json=openai_error("You exceeded your current quota", "insufficient_quota", "insufficient_quota")
    )

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert caught.value.retryable is False
    assert caught.value.extra["category"] == "billing"


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503, 504])
async def test_transient_statuses_are_retryable(respx_mock: respx.Router, status: int) -> None:
    respx_mock.post(URL).respond(status, json=openai_error("try again", "server_error"))

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert caught.value.status == status
    assert caught.value.retryable is True


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (400, "invalid_request"),
        (401, "auth"),
        (403, "auth"),
        (404, "not_found"),
        (413, "too_large"),
        (422, "invalid_request"),
    ],
)
async def test_client_errors_are_not_retryable(respx_mock: respx.Router, status: int, category: str) -> None:
    respx_mock.post(URL).respond(status, json=openai_error("bad", "invalid_request_error"))

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert caught.value.status == status
    assert caught.value.retryable is False
    assert caught.value.extra["category"] == category


async def test_a_context_length_error_is_told_apart(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(
        400, json=openai_error("maximum context length", "invalid_request_error", "context_length_exceeded")
    )

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert caught.value.extra["category"] == "context_length"
    assert caught.value.extra["code"] == "context_length_exceeded"


async def test_x_should_retry_overrides_the_status_rule(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(
        500, json=openai_error("nope", "server_error"), headers={"x-should-retry": "false"}
    )

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert caught.value.retryable is False


async def test_an_error_message_never_contains_the_api_key(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(
        401,
        json=openai_error(
            "Incorrect API key provided: sk-secret-123.", "invalid_request_error", "invalid_api_key"
        ),
    )

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert "sk-secret-123" not in str(caught.value)
    assert "[redacted]" in str(caught.value)


async def test_a_non_json_error_body_is_reported_as_text(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(502, text="<html>Bad Gateway</html>")

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert caught.value.retryable is True
    assert "Bad Gateway" in caught.value.message


async def test_a_timeout_is_a_retryable_timeout_without_status(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).mock(side_effect=httpx.ReadTimeout("timed out"))

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.kind, caught.value.status, caught.value.retryable) == ("timeout", None, True)


async def test_a_refused_connection_is_a_retryable_connection_error(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.kind, caught.value.status, caught.value.retryable) == ("connection", None, True)
    assert "Connection refused" in caught.value.message


async def test_a_stream_that_times_out_before_starting_is_a_timeout(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).mock(side_effect=httpx.ConnectTimeout("timed out"))

    with pytest.raises(ProviderError) as caught:
        await collect(adapter.stream(CONFIG, request(stream=True)))

    assert (caught.value.kind, caught.value.retryable) == ("timeout", True)


async def test_it_passes_the_configured_timeout_on_each_call(respx_mock: respx.Router) -> None:
    route = respx_mock.post(URL).respond(json=completion({"role": "assistant", "content": "ok"}))

    await adapter.complete(CONFIG, request())

    timeout = route.calls.last.request.extensions["timeout"]
    assert timeout["read"] == 30
    assert timeout["connect"] == 10
