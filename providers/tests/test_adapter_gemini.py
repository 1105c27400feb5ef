"""Gemini adapter: request translation, response and CRLF SSE stream translation, error classification."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
import respx

from providers.adapters.base import ChatRequest, ProviderConfig, ProviderError, StreamDelta, Usage
from providers.adapters.gemini import GeminiAdapter

BASE = "https://generativelanguage.googleapis.com"
URL = f"{BASE}/v1beta/models/gemini-2.5-flash:generateContent"
STREAM_URL = f"{BASE}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
CONFIG = ProviderConfig(name="google", base_url=f"{BASE}/", api_key="AIza-secret", timeout_s=30)
adapter = GeminiAdapter()
PNG = "iVBORw0KGgo="


def request(**overrides: Any) -> ChatRequest:
    values: dict[str, Any] = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Hi"}]}
    return ChatRequest(**{**values, **overrides})


def answer(parts: list[dict[str, Any]], finish: str | None = "STOP", usage: dict | None = None) -> dict:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    payload: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r1",
    }
    if usage:
        payload["usageMetadata"] = usage
    return payload


def sse(*events: dict[str, Any]) -> bytes:
    """Gemini's framing: `data: {json}` and a CRLF blank line, no terminator."""
    return b"".join(f"data: {json.dumps(event)}\r\n\r\n".encode() for event in events)


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
    route = respx_mock.post(URL).respond(json=answer([{"text": "ok"}]))
    await adapter.complete(CONFIG, req)
    return json.loads(route.calls.last.request.content)


def google_error(code: int, status: str, message: str, details: list | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, "details": details or []}}


def retry_info(delay: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


# --- request -------------------------------------------------------------------------------------------


async def test_it_posts_to_generate_content_with_the_goog_api_key_header(respx_mock: respx.Router) -> None:
    route = respx_mock.post(URL).respond(json=answer([{"text": "ok"}]))

    await adapter.complete(CONFIG, request(model="models/gemini-2.5-flash"))

    sent = route.calls.last.request
    assert str(sent.url) == URL
    assert sent.headers["x-goog-api-key"] == "AIza-secret"
    assert sent.headers["content-type"] == "application/json"
    assert "key=" not in str(sent.url)


async def test_it_sends_no_key_header_without_an_api_key(respx_mock: respx.Router) -> None:
    route = respx_mock.post("http://fake:9000/google/v1beta/models/gemini-2.5-flash:generateContent").respond(
        json=answer([{"text": "ok"}])
    )

    await adapter.complete(ProviderConfig("google", "http://fake:9000/google", None), request())

    assert "x-goog-api-key" not in route.calls.last.request.headers


async def test_it_moves_system_messages_to_system_instruction_and_translates_the_conversation(
    respx_mock: respx.Router,
) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    messages = [
        {"role": "system", "content": "You are terse."},
        {
            "role": "developer",
            "content": [{"type": "text", "text": "Use "}, {"type": "text", "text": "metric."}],
        },
        {"role": "user", "content": "Hi"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/photo.webp"}},
            ],
        },
        {"role": "assistant", "content": "Checking.", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'},
        {"role": "assistant", "content": "It is 18C."},
        {"role": "user", "content": "Thanks"},
    ]

    body = await sent_body(
        respx_mock,
        request(messages=messages, temperature=0.7, top_p=0.9, max_tokens=256, stop=["END"], seed=42),
    )

    assert body == {
        "systemInstruction": {"parts": [{"text": "You are terse."}, {"text": "Use metric."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Hi"},
                    {"text": "Look:"},
                    {"inlineData": {"mimeType": "image/png", "data": PNG}},
                    {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/photo.webp"}},
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "Checking."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                ],
            },
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}}],
            },
            {"role": "model", "parts": [{"text": "It is 18C."}]},
            {"role": "user", "parts": [{"text": "Thanks"}]},
        ],
        "generationConfig": {
            "temperature": 0.7,
            "topP": 0.9,
            "maxOutputTokens": 256,
            "stopSequences": ["END"],
            "seed": 42,
        },
    }


async def test_it_wraps_a_tool_result_that_is_not_a_json_object(respx_mock: respx.Router) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "now", "arguments": ""}}
    messages = [
        {"role": "user", "content": "Time?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "12:00"},
    ]

    body = await sent_body(respx_mock, request(messages=messages))

    assert body["contents"][1] == {"role": "model", "parts": [{"functionCall": {"name": "now", "args": {}}}]}
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "now", "response": {"content": "12:00"}}}
    ]


async def test_it_sends_a_placeholder_user_turn_when_only_system_messages_remain(
    respx_mock: respx.Router,
) -> None:
    body = await sent_body(respx_mock, request(messages=[{"role": "system", "content": "Say hi."}]))

    assert body["contents"] == [{"role": "user", "parts": [{"text": "."}]}]


async def test_it_declares_tools_with_the_schema_keywords_gemini_rejects_removed(
    respx_mock: respx.Router,
) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "search",
                "description": "Search",
                "strict": True,
                "parameters": {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "strict": {"type": "boolean"},
                        "filters": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"a": {"type": "string"}},
                        },
                    },
                    "required": ["strict"],
                },
            },
        },
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}},
    ]

    body = await sent_body(respx_mock, request(tools=tools, tool_choice="required"))

    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "search",
                    "description": "Search",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "strict": {"type": "boolean"},
                            "filters": {"type": "object", "properties": {"a": {"type": "string"}}},
                        },
                        "required": ["strict"],
                    },
                },
                {"name": "now"},
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ({"type": "function", "function": {"name": "now"}}, {"mode": "ANY", "allowedFunctionNames": ["now"]}),
    ],
)
async def test_it_translates_tool_choice(respx_mock: respx.Router, tool_choice: Any, expected: dict) -> None:
    tools = [{"type": "function", "function": {"name": "now"}}]

    body = await sent_body(respx_mock, request(tools=tools, tool_choice=tool_choice))

    assert body["toolConfig"] == {"functionCallingConfig": expected}


async def test_json_object_mode_asks_for_a_json_mime_type(respx_mock: respx.Router) -> None:
    body = await sent_body(respx_mock, request(response_format={"type": "json_object"}))

    assert body["generationConfig"] == {"responseMimeType": "application/json"}


async def test_json_schema_mode_sends_the_schema_as_response_schema(respx_mock: respx.Router) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": False}

    body = await sent_body(
        respx_mock,
        request(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "n", "strict": True, "schema": schema},
            }
        ),
    )

    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"n": {"type": "integer"}}},
    }


async def test_it_clamps_temperature_to_gemini_range(respx_mock: respx.Router) -> None:
    body = await sent_body(respx_mock, request(temperature=2.5))

    assert body["generationConfig"]["temperature"] == 2.0


# --- response ------------------------------------------------------------------------------------------


async def test_it_returns_text_without_thoughts_and_counts_thoughts_as_completion(
    respx_mock: respx.Router,
) -> None:
    usage = {
        "promptTokenCount": 120,
        "candidatesTokenCount": 9,
        "thoughtsTokenCount": 200,
        "totalTokenCount": 329,
        "cachedContentTokenCount": 100,
    }
    parts = [{"text": "Thinking about it", "thought": True}, {"text": "Sunny, "}, {"text": "18°C."}]
    respx_mock.post(URL).respond(json=answer(parts, usage=usage))

    result = await adapter.complete(CONFIG, request())

    assert result.content == "Sunny, 18°C."
    assert result.finish_reason == "stop"
    assert result.usage == Usage(
        prompt_tokens=120, completion_tokens=209, cached_tokens=100, reasoning_tokens=200
    )
    assert result.upstream_model == "gemini-2.5-flash"


async def test_it_does_not_add_thoughts_twice_when_the_total_shows_them_inside_candidates(
    respx_mock: respx.Router,
) -> None:
    usage = {
        "promptTokenCount": 10,
        "candidatesTokenCount": 50,
        "thoughtsTokenCount": 20,
        "totalTokenCount": 60,
    }
    respx_mock.post(URL).respond(json=answer([{"text": "x"}], usage=usage))

    result = await adapter.complete(CONFIG, request())

    assert (result.usage.completion_tokens, result.usage.reasoning_tokens) == (50, 20)


async def test_a_function_call_becomes_a_tool_call_and_stop_becomes_tool_calls(
    respx_mock: respx.Router,
) -> None:
    respx_mock.post(URL).respond(
        json=answer([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}])
    )

    result = await adapter.complete(CONFIG, request())

    assert result.finish_reason == "tool_calls"
    assert result.content is None
    assert result.tool_calls is not None
    [call] = result.tool_calls
    assert call["id"].startswith("call_")
    assert call["type"] == "function"
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}


async def test_a_blocked_prompt_is_a_content_filter_finish_with_no_content(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(
        json={
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
        }
    )

    result = await adapter.complete(CONFIG, request())

    assert (result.content, result.finish_reason, result.usage.prompt_tokens) == (None, "content_filter", 8)


@pytest.mark.parametrize(
    ("native", "expected"),
    [
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
    ],
)
async def test_it_maps_finish_reasons(respx_mock: respx.Router, native: str, expected: str) -> None:
    respx_mock.post(URL).respond(json=answer([{"text": "x"}], native))

    result = await adapter.complete(CONFIG, request())

    assert result.finish_reason == expected


# --- streaming -----------------------------------------------------------------------------------------


async def test_it_streams_crlf_framed_chunks_then_the_finish_then_the_last_usage(
    respx_mock: respx.Router,
) -> None:
    body = sse(
        answer([{"text": "Hel"}], None, {"promptTokenCount": 5, "totalTokenCount": 5}),
        answer([{"text": "pondering", "thought": True}, {"text": "lo"}], None),
        answer(
            [{"text": "!"}],
            "STOP",
            {
                "promptTokenCount": 5,
                "candidatesTokenCount": 3,
                "thoughtsTokenCount": 4,
                "totalTokenCount": 12,
            },
        ),
    )
    route = respx_mock.post(STREAM_URL).respond(content=body, headers={"content-type": "text/event-stream"})

    deltas = await collect(adapter.stream(CONFIG, request(stream=True)))

    assert str(route.calls.last.request.url) == STREAM_URL
    assert deltas == [
        StreamDelta(content="Hel"),
        StreamDelta(content="lo"),
        StreamDelta(content="!"),
        StreamDelta(finish_reason="stop"),
        StreamDelta(usage=Usage(prompt_tokens=5, completion_tokens=7, reasoning_tokens=4)),
    ]


async def test_it_streams_whole_function_calls_as_numbered_tool_call_deltas(respx_mock: respx.Router) -> None:
    body = sse(
        answer([{"functionCall": {"name": "a", "args": {"x": 1}}}], None),
        answer([{"functionCall": {"name": "b", "args": {}, "id": "fc_2"}}], "STOP"),
    )
    respx_mock.post(STREAM_URL).respond(content=body)

    deltas = await collect(adapter.stream(CONFIG, request(stream=True)))

    calls = [call for delta in deltas for call in delta.tool_calls or []]
    assert [(c["index"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        (0, "a", '{"x": 1}'),
        (1, "b", "{}"),
    ]
    assert calls[1]["id"] == "fc_2"
    assert deltas[-1] == StreamDelta(finish_reason="tool_calls")


async def test_an_error_payload_mid_stream_raises_after_the_text_so_far(respx_mock: respx.Router) -> None:
    body = sse(answer([{"text": "Hel"}], None), google_error(503, "UNAVAILABLE", "The model is overloaded."))
    respx_mock.post(STREAM_URL).respond(content=body)

    received: list[StreamDelta] = []
    with pytest.raises(ProviderError) as caught:
        async for delta in adapter.stream(CONFIG, request(stream=True)):
            received.append(delta)

    assert received == [StreamDelta(content="Hel")]
    assert (caught.value.status, caught.value.retryable) == (503, True)
    assert "overloaded" in caught.value.message


async def test_a_bare_json_error_without_a_data_prefix_is_caught(respx_mock: respx.Router) -> None:
    error = json.dumps(google_error(500, "INTERNAL", "An internal error has occurred."), indent=2)
    body = sse(answer([{"text": "Hel"}], None)) + error.replace("\n", "\r\n").encode() + b"\r\n"
    respx_mock.post(STREAM_URL).respond(content=body)

    with pytest.raises(ProviderError) as caught:
        await collect(adapter.stream(CONFIG, request(stream=True)))

    assert (caught.value.status, caught.value.retryable) == (500, True)
    assert "internal error" in caught.value.message


async def test_it_raises_after_yielding_what_arrived_when_the_connection_is_cut(
    respx_mock: respx.Router,
) -> None:
    stream = CutStream(
        [sse(answer([{"text": "Hel"}], None)), b'data: {"candi'], httpx.RemoteProtocolError("cut")
    )
    respx_mock.post(STREAM_URL).mock(return_value=httpx.Response(200, stream=stream))

    received: list[StreamDelta] = []
    with pytest.raises(ProviderError) as caught:
        async for delta in adapter.stream(CONFIG, request(stream=True)):
            received.append(delta)

    assert received == [StreamDelta(content="Hel")]
    assert (caught.value.kind, caught.value.retryable) == ("protocol", True)


async def test_a_stream_closed_without_a_finish_reason_is_a_protocol_error(respx_mock: respx.Router) -> None:
    respx_mock.post(STREAM_URL).respond(content=sse(answer([{"text": "Hel"}], None)))

    with pytest.raises(ProviderError) as caught:
        await collect(adapter.stream(CONFIG, request(stream=True)))

    assert (caught.value.kind, caught.value.retryable, caught.value.extra["partial"]) == (
        "protocol",
        True,
        True,
    )


# --- errors --------------------------------------------------------------------------------------------


async def test_a_503_carries_the_retry_info_delay(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(
        503,
        json=google_error(
            503, "UNAVAILABLE", "The model is overloaded. Please try again later.", [retry_info("7s")]
        ),
    )

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.status, caught.value.retryable, caught.value.retry_after_s) == (503, True, 7.0)
    assert caught.value.message == "google 503 UNAVAILABLE: The model is overloaded. Please try again later."


async def test_a_resource_exhausted_error_wrapped_in_an_array_is_retryable_after_its_delay(
    respx_mock: respx.Router,
) -> None:
    quota = {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "q"}]}
    body = [
        google_error(
            429, "RESOURCE_EXHAUSTED", "You exceeded your current quota", [quota, retry_info("20.75s")]
        )
    ]
    respx_mock.post(STREAM_URL).respond(429, json=body)

    with pytest.raises(ProviderError) as caught:
        await collect(adapter.stream(CONFIG, request(stream=True)))

    assert (caught.value.status, caught.value.retryable, caught.value.retry_after_s) == (429, True, 20.75)
    assert caught.value.extra["category"] == "rate_limit"


async def test_an_invalid_api_key_400_is_a_credentials_error(respx_mock: respx.Router) -> None:
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
    respx_mock.post(URL).respond(
        400,
        json=google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [info]),
    )

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.status, caught.value.retryable) == (400, False)
    assert caught.value.extra["category"] == "auth"


async def test_an_unknown_model_is_a_not_found_error(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(
        404, json=google_error(404, "NOT_FOUND", "models/x is not found for API version v1beta")
    )

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.status, caught.value.retryable, caught.value.extra["category"]) == (
        404,
        False,
        "not_found",
    )


async def test_a_timeout_is_retryable(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).mock(side_effect=httpx.ReadTimeout("timed out"))

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.kind, caught.value.status, caught.value.retryable) == ("timeout", None, True)


async def test_a_connect_error_is_retryable(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).mock(side_effect=httpx.ConnectError("Name or service not known"))

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CONFIG, request())

    assert (caught.value.kind, caught.value.retryable) == ("connection", True)
