"""DeepSeek adapter: OpenAI-format requests with DeepSeek's differences, keep-alives, usage and failures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
import respx

from providers.adapters.base import ChatRequest, ProviderConfig, ProviderError, StreamDelta, Usage
from providers.adapters.deepseek import DeepSeekAdapter

URL = "https://api.deepseek.com/chat/completions"
CONFIG = ProviderConfig(
    name="deepseek", base_url="https://api.deepseek.com/", api_key="sk-ds-secret", timeout_s=30
)
adapter = DeepSeekAdapter()


def request(**overrides: Any) -> ChatRequest:
    values: dict[str, Any] = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hi"}]}
    return ChatRequest(**{**values, **overrides})


def completion(content: str | None, finish_reason: str = "stop", usage: dict | None = None) -> dict[str, Any]:
    return {
        "id": "48ad6b6e",
        "object": "chat.completion",
        "created": 1766977481,
        "model": "deepseek-chat",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": 11, "total_tokens": 21},
    }


def chunk(
    delta: dict[str, Any], finish_reason: str | None = None, usage: dict | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "deepseek-chat",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage:
        payload["usage"] = usage
    return payload


def sse(*events: dict[str, Any] | str) -> bytes:
    return b"".join(
        f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n".encode() for event in events
    )


USAGE = {
    "prompt_tokens": 100,
    "completion_tokens": 40,
    "total_tokens": 140,
    "prompt_tokens_details": {"cached_tokens": 64},
    "prompt_cache_hit_tokens": 64,
    "prompt_cache_miss_tokens": 36,
    "completion_tokens_details": {"reasoning_tokens": 25},
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


# --- request -------------------------------------------------------------------------------------------


async def test_it_posts_to_chat_completions_at_the_base_without_v1(respx_mock: respx.Router) -> None:
    route = respx_mock.post(URL).respond(json=completion("ok"))

    await adapter.complete(CONFIG, request())

    sent = route.calls.last.request
    assert str(sent.url) == URL
    assert sent.headers["authorization"] == "Bearer sk-ds-secret"


async def test_it_sends_string_content_max_tokens_and_drops_what_deepseek_does_not_document(
    respx_mock: respx.Router,
) -> None:
    route = respx_mock.post(URL).respond(json=completion("ok"))
    messages = [
        {"role": "developer", "content": "Be terse."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Reply "}, {"type": "text", "text": "in json."}],
        },
    ]
    tools = [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}},
        {"type": "custom", "custom": {"name": "grammar"}},
    ]

    await adapter.complete(
        CONFIG,
        request(
            messages=messages,
            max_tokens=64,
            temperature=1.3,
            stop=["END"],
            seed=1,
            user="u1",
            tools=tools,
            tool_choice="auto",
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object"}},
            },
        ),
    )

    assert json.loads(route.calls.last.request.content) == {
        "model": "deepseek-chat",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Reply in json."},
        ],
        "max_tokens": 64,
        "temperature": 1.3,
        "stop": ["END"],
        "tools": [tools[0]],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
    }


async def test_it_refuses_image_content_instead_of_dropping_it(respx_mock: respx.Router) -> None:
    content = [
        {"type": "text", "text": "What?"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
    ]

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request(messages=[{"role": "user", "content": content}]))

    assert (caught.value.status, caught.value.retryable) == (400, False)


async def test_it_asks_for_usage_in_streams(respx_mock: respx.Router) -> None:
    route = respx_mock.post(URL).respond(content=sse(chunk({}, "stop"), "[DONE]"))

    await collect(adapter.stream(CONFIG, request(stream=True)))

    body = json.loads(route.calls.last.request.content)
    assert (body["stream"], body["stream_options"]) == (True, {"include_usage": True})


# --- response ------------------------------------------------------------------------------------------


async def test_it_reads_cache_hits_and_reasoning_tokens_from_usage(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(json=completion("Hello!", usage=USAGE))

    result = await adapter.complete(CONFIG, request())

    assert result.content == "Hello!"
    assert result.usage == Usage(
        prompt_tokens=100, completion_tokens=40, cached_tokens=64, reasoning_tokens=25
    )


async def test_it_falls_back_to_prompt_tokens_details_for_cached_tokens(respx_mock: respx.Router) -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 8}}
    respx_mock.post(URL).respond(json=completion("x", usage=usage))

    result = await adapter.complete(CONFIG, request())

    assert result.usage.cached_tokens == 8


async def test_a_null_cache_hit_count_falls_back_to_prompt_tokens_details(respx_mock: respx.Router) -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 1,
        "prompt_tokens_details": {"cached_tokens": 8},
        "prompt_cache_hit_tokens": None,
    }
    respx_mock.post(URL).respond(json=completion("x", usage=usage))

    result = await adapter.complete(CONFIG, request())

    assert result.usage.cached_tokens == 8


async def test_without_prompt_tokens_the_prompt_is_cache_hits_plus_misses(respx_mock: respx.Router) -> None:
    usage = {"completion_tokens": 1, "prompt_cache_hit_tokens": 64, "prompt_cache_miss_tokens": 36}
    respx_mock.post(URL).respond(json=completion("x", usage=usage))

    result = await adapter.complete(CONFIG, request())

    assert (result.usage.prompt_tokens, result.usage.cached_tokens) == (100, 64)


async def test_it_skips_the_blank_keep_alive_lines_before_a_json_body(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(content=b"\n\n\n" + json.dumps(completion("late")).encode())

    result = await adapter.complete(CONFIG, request())

    assert result.content == "late"


async def test_insufficient_system_resource_is_a_retryable_failure_that_keeps_the_usage(
    respx_mock: respx.Router,
) -> None:
    respx_mock.post(URL).respond(json=completion("Half an ans", "insufficient_system_resource", USAGE))

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.retryable, caught.value.status) == (True, None)
    assert caught.value.extra["native_finish_reason"] == "insufficient_system_resource"
    assert caught.value.extra["usage"].prompt_tokens == 100


# --- streaming -----------------------------------------------------------------------------------------


async def test_it_streams_past_keep_alive_comments_and_takes_usage_from_any_chunk(
    respx_mock: respx.Router,
) -> None:
    body = (
        b": keep-alive\n\n: keep-alive\n\n"
        + sse(
            chunk({"role": "assistant", "content": ""}),
            chunk({"reasoning_content": "Let me think"}),
            chunk({"content": "Hel"}),
        )
        + b": keep-alive\n\n"
        + sse(chunk({"content": "lo"}, "stop", USAGE), "[DONE]")
    )
    respx_mock.post(URL).respond(content=body, headers={"content-type": "text/event-stream"})

    deltas = await collect(adapter.stream(CONFIG, request(stream=True)))

    assert deltas == [
        StreamDelta(content="Hel"),
        StreamDelta(content="lo"),
        StreamDelta(finish_reason="stop"),
        StreamDelta(
            usage=Usage(prompt_tokens=100, completion_tokens=40, cached_tokens=64, reasoning_tokens=25)
        ),
    ]


async def test_a_stream_cut_off_for_lack_of_resources_raises_after_the_text_with_its_usage(
    respx_mock: respx.Router,
) -> None:
    usage_chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [],
        "usage": USAGE,
    }
    body = sse(chunk({"content": "Hel"}), chunk({}, "insufficient_system_resource"), usage_chunk, "[DONE]")
    respx_mock.post(URL).respond(content=body)

    received: list[StreamDelta] = []
    with pytest.raises(ProviderError) as caught:
        async for delta in adapter.stream(CONFIG, request(stream=True)):
            received.append(delta)

    assert received == [StreamDelta(content="Hel")]
    assert caught.value.retryable is True
    assert caught.value.extra["usage"].completion_tokens == 40
    assert caught.value.extra["partial"] is True


async def test_it_raises_after_yielding_what_arrived_when_the_connection_is_cut(
    respx_mock: respx.Router,
) -> None:
    stream = CutStream(
        [b": keep-alive\n\n", sse(chunk({"content": "Hel"}))], httpx.ReadError("reset by peer")
    )
    respx_mock.post(URL).mock(return_value=httpx.Response(200, stream=stream))

    received: list[StreamDelta] = []
    with pytest.raises(ProviderError) as caught:
        async for delta in adapter.stream(CONFIG, request(stream=True)):
            received.append(delta)

    assert received == [StreamDelta(content="Hel")]
    assert (caught.value.kind, caught.value.retryable) == ("connection", True)


# --- errors --------------------------------------------------------------------------------------------


def deepseek_error(message: str, type_: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": "invalid_request_error"}}


async def test_insufficient_balance_is_a_billing_error_that_is_not_retried(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(402, json=deepseek_error("Insufficient Balance", "unknown_error"))

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.status, caught.value.retryable, caught.value.extra["category"]) == (
        402,
        False,
        "billing",
    )


async def test_server_overloaded_is_retryable(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(503, json=deepseek_error("Server overloaded", "server_error"))

    with pytest.raises(ProviderError) as caught:
        await collect(adapter.stream(CONFIG, request(stream=True)))

    assert (caught.value.status, caught.value.retryable) == (503, True)


async def test_a_rate_limit_is_retryable(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(429, json=deepseek_error("Rate Limit Reached", "rate_limit_error"))

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.status, caught.value.retryable, caught.value.retry_after_s) == (429, True, None)


async def test_an_authentication_failure_is_not_retryable(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(
        401,
        json=deepseek_error(
            "Authentication Fails, Your api key: ****cret is invalid", "authentication_error"
        ),
    )

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.status, caught.value.retryable, caught.value.extra["category"]) == (
        401,
        False,
        "auth",
    )
    assert "sk-ds-secret" not in caught.value.message


async def test_a_timeout_is_retryable(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).mock(side_effect=httpx.ReadTimeout("timed out"))

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.kind, caught.value.status, caught.value.retryable) == ("timeout", None, True)
