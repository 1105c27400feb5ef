"""The fake upstream speaks every vendor's wire format, deterministically, and injects faults on request."""

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from providers.fake_upstream import FakeUpstreamProcess
from providers.fake_upstream.rules import RuleBook, RuleError, parse_rule

QUESTION = "Hello there, how are you doing today, my dear friend?"
WEATHER_TOOL_OPENAI = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstreamProcess]:
    with FakeUpstreamProcess() as process:
        yield process


@pytest.fixture
def client(upstream: FakeUpstreamProcess) -> Iterator[httpx.Client]:
    upstream.clear()
    with httpx.Client(base_url=upstream.url, timeout=10) as http:
        yield http


# Requests in each vendor's format, and where each vendor puts the answer text.


def openai_request(
    model: str = "gpt-4o-mini", text: str = QUESTION, **extra: Any
) -> tuple[str, dict[str, Any]]:
    return "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def deepseek_request(
    model: str = "deepseek-chat", text: str = QUESTION, **extra: Any
) -> tuple[str, dict[str, Any]]:
    return "/chat/completions", {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def anthropic_request(
    model: str = "claude-haiku-4-5", text: str = QUESTION, max_tokens: int = 1000, **extra: Any
) -> tuple[str, dict[str, Any]]:
    body = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }
    return "/v1/messages", body


def gemini_request(
    model: str = "gemini-2.5-flash", text: str = QUESTION, stream: bool = False, **extra: Any
) -> tuple[str, dict[str, Any]]:
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{model}:{action}", {
        "contents": [{"role": "user", "parts": [{"text": text}]}],
        **extra,
    }


def answer_text(vendor: str, body: dict[str, Any]) -> str:
    if vendor in ("openai", "deepseek"):
        return str(body["choices"][0]["message"]["content"])
    if vendor == "anthropic":
        return "".join(block["text"] for block in body["content"])
    return "".join(part["text"] for part in body["candidates"][0]["content"].get("parts", []))


def sse_events(raw: str) -> list[tuple[str | None, str]]:
    """(event name, data) pairs, with comment lines skipped."""
    events = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        if data:
            events.append((name, "\n".join(data)))
    return events


def prompt_tokens(*texts: str) -> int:
    return math.ceil(sum(len(t) for t in texts) / 4) + 3 * len(texts)


# Whole sentences: the model, then the question quoted back (#18: it used to end mid-sentence, at 40 characters).
EXPECTED_TEXT = f'This is a fake answer from {{model}}. You asked "{QUESTION}".'


def test_health_answers_ok(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_openai_answers_a_chat_completion_with_openai_usage(client: httpx.Client) -> None:
    path, body = openai_request(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]
    )
    response = client.post(path, json=body, headers={"authorization": "Bearer sk-test"})
    assert response.status_code == 200
    assert response.headers["x-request-id"]
    data = response.json()
    assert data["id"].startswith("chatcmpl-")
    assert data["object"] == "chat.completion"
    assert data["model"] == "gpt-4o-mini"
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == EXPECTED_TEXT.format(model="gpt-4o-mini")
    assert choice["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["prompt_tokens"] == prompt_tokens("Be brief.", QUESTION)
    assert usage["completion_tokens"] == len(choice["message"]["content"].split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


def test_openai_reasoning_models_count_reasoning_inside_completion_tokens(client: httpx.Client) -> None:
    path, body = openai_request(model="o3-mini")
    data = client.post(path, json=body).json()
    usage = data["usage"]
    words = len(data["choices"][0]["message"]["content"].split())
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 10
    assert usage["completion_tokens"] == words + 10


@pytest.mark.parametrize("path", ["/chat/completions", "/v1/chat/completions"])
def test_deepseek_answers_with_cache_hit_and_miss_tokens(client: httpx.Client, path: str) -> None:
    client.post("/__control", json={"model": "deepseek-chat", "cached_tokens": 4})
    _, body = deepseek_request()
    data = client.post(path, json=body).json()
    assert "-" in data["id"]  # a UUID, as DeepSeek sends
    assert data["object"] == "chat.completion"
    assert "refusal" not in data["choices"][0]["message"]
    usage = data["usage"]
    assert usage["prompt_tokens"] == prompt_tokens(QUESTION)
    assert usage["prompt_cache_hit_tokens"] == 4
    assert usage["prompt_cache_hit_tokens"] + usage["prompt_cache_miss_tokens"] == usage["prompt_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 4


def test_anthropic_answers_a_message_with_anthropic_usage(client: httpx.Client) -> None:
    client.post("/__control", json={"model": "claude-haiku-4-5", "cached_tokens": 5, "cache_write_tokens": 3})
    path, body = anthropic_request(system="Be brief.")
    response = client.post(
        path, json=body, headers={"x-api-key": "sk-ant", "anthropic-version": "2023-06-01"}
    )
    assert response.status_code == 200
    assert response.headers["request-id"]
    data = response.json()
    assert data["id"].startswith("msg_")
    assert (data["type"], data["role"], data["model"]) == ("message", "assistant", "claude-haiku-4-5")
    assert data["content"] == [{"type": "text", "text": EXPECTED_TEXT.format(model="claude-haiku-4-5")}]
    assert data["stop_reason"] == "end_turn"
    assert data["stop_sequence"] is None
    usage = data["usage"]
    total_input = (
        usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
    )
    assert total_input == prompt_tokens("Be brief.", QUESTION)
    assert (usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]) == (5, 3)
    assert usage["output_tokens"] == len(data["content"][0]["text"].split())


def test_anthropic_splits_cache_writes_into_5_minute_and_1_hour_ones(client: httpx.Client) -> None:
    rule = {"model": "claude-haiku-4-5", "cache_write_tokens": 5, "cache_write_1h_tokens": 2}
    client.post("/__control", json=rule)
    path, body = anthropic_request()
    usage = client.post(path, json=body).json()["usage"]
    stream = sse_events(client.post(path, json={**body, "stream": True}).text)
    streamed = json.loads(stream[0][1])["message"]["usage"]
    for reported in (usage, streamed):
        assert reported["cache_creation_input_tokens"] == 5
        assert reported["cache_creation"] == {"ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 2}


def test_the_1_hour_part_of_cache_writes_is_capped_at_the_writes(client: httpx.Client) -> None:
    client.post(
        "/__control", json={"model": "claude-haiku-4-5", "cache_write_tokens": 1, "cache_write_1h_tokens": 9}
    )
    path, body = anthropic_request()
    usage = client.post(path, json=body).json()["usage"]
    assert usage["cache_creation"] == {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1}


def test_anthropic_refuses_a_request_without_max_tokens(client: httpx.Client) -> None:
    response = client.post("/v1/messages", json={"model": "claude-haiku-4-5", "messages": [{"role": "user"}]})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]


def test_anthropic_refuses_a_system_role_inside_messages(client: httpx.Client) -> None:
    path, body = anthropic_request()
    body["messages"].insert(0, {"role": "system", "content": "no"})
    assert client.post(path, json=body).status_code == 400


def test_gemini_answers_with_usage_metadata_and_thoughts_on_2_5_models(client: httpx.Client) -> None:
    client.post("/__control", json={"model": "gemini-2.5-flash", "cached_tokens": 2})
    path, body = gemini_request(systemInstruction={"parts": [{"text": "Be brief."}]})
    response = client.post(path, json=body, headers={"x-goog-api-key": "AIza-test"})
    assert response.status_code == 200
    data = response.json()
    candidate = data["candidates"][0]
    assert candidate["content"]["role"] == "model"
    assert candidate["content"]["parts"] == [{"text": EXPECTED_TEXT.format(model="gemini-2.5-flash")}]
    assert candidate["finishReason"] == "STOP"
    assert data["modelVersion"] == "gemini-2.5-flash"
    assert data["responseId"]
    usage = data["usageMetadata"]
    assert usage["promptTokenCount"] == prompt_tokens("Be brief.", QUESTION)
    assert usage["candidatesTokenCount"] == len(candidate["content"]["parts"][0]["text"].split())
    assert usage["thoughtsTokenCount"] == 10
    assert usage["cachedContentTokenCount"] == 2
    assert usage["totalTokenCount"] == (
        usage["promptTokenCount"] + usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
    )


def test_gemini_before_2_5_reports_no_thoughts(client: httpx.Client) -> None:
    path, body = gemini_request(model="gemini-2.0-flash")
    usage = client.post(path, json=body).json()["usageMetadata"]
    assert "thoughtsTokenCount" not in usage
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]


VENDOR_REQUESTS = {
    "openai": openai_request,
    "deepseek": deepseek_request,
    "anthropic": anthropic_request,
    "gemini": gemini_request,
}
VOLATILE_KEYS = {"id", "created", "responseId"}


def without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


@pytest.mark.parametrize("vendor", VENDOR_REQUESTS)
def test_the_same_request_gets_the_same_answer(client: httpx.Client, vendor: str) -> None:
    path, body = VENDOR_REQUESTS[vendor]()
    first, second = client.post(path, json=body).json(), client.post(path, json=body).json()
    assert without_ids(first) == without_ids(second)
    assert first != second  # ids still differ


def finish_reason(vendor: str, body: dict[str, Any]) -> str:
    if vendor in ("openai", "deepseek"):
        return str(body["choices"][0]["finish_reason"])
    if vendor == "anthropic":
        return str(body["stop_reason"])
    return str(body["candidates"][0]["finishReason"])


@pytest.mark.parametrize(
    ("vendor", "limit", "reason"),
    [
        ("openai", {"max_completion_tokens": 3}, "length"),
        ("openai", {"max_tokens": 3}, "length"),
        ("deepseek", {"max_tokens": 3}, "length"),
        ("anthropic", {"max_tokens": 3}, "max_tokens"),
        ("gemini", {"generationConfig": {"maxOutputTokens": 3}}, "MAX_TOKENS"),
    ],
)
def test_max_tokens_truncates_the_answer_with_the_length_reason(
    client: httpx.Client, vendor: str, limit: dict[str, Any], reason: str
) -> None:
    path, body = VENDOR_REQUESTS[vendor](**limit)
    data = client.post(path, json=body).json()
    # gemini-2.5-flash thinks: its thoughts (here all but one of the 3 tokens) come out of the same limit.
    assert answer_text(vendor, data) == ("This" if vendor == "gemini" else "This is a")
    assert finish_reason(vendor, data) == reason


def test_thinking_counts_toward_the_output_limit(client: httpx.Client) -> None:
    path, body = gemini_request(generationConfig={"maxOutputTokens": 8})
    usage = client.post(path, json=body).json()["usageMetadata"]
    assert usage["candidatesTokenCount"] + usage["thoughtsTokenCount"] == 8


def test_a_weather_question_with_tools_gets_an_openai_tool_call(client: httpx.Client) -> None:
    path, body = openai_request(text="What's the weather in Paris?", tools=[WEATHER_TOOL_OPENAI])
    choice = client.post(path, json=body).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["id"].startswith("call_")
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris"}


def test_tool_choice_none_or_no_weather_gets_text(client: httpx.Client) -> None:
    path, body = openai_request(text="What's the weather?", tools=[WEATHER_TOOL_OPENAI], tool_choice="none")
    assert client.post(path, json=body).json()["choices"][0]["finish_reason"] == "stop"
    path, body = openai_request(tools=[WEATHER_TOOL_OPENAI])
    assert client.post(path, json=body).json()["choices"][0]["finish_reason"] == "stop"


def test_a_forced_tool_choice_gets_a_tool_call_whatever_the_question(client: httpx.Client) -> None:
    other_tool = {"type": "function", "function": {"name": "lookup", "parameters": {}}}
    path, body = openai_request(
        tools=[WEATHER_TOOL_OPENAI, other_tool],
        tool_choice={"type": "function", "function": {"name": "lookup"}},
    )
    message = client.post(path, json=body).json()["choices"][0]["message"]
    assert message["tool_calls"][0]["function"]["name"] == "lookup"


def test_a_tool_result_turn_gets_a_text_answer(client: httpx.Client) -> None:
    messages = [
        {"role": "user", "content": "What's the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny weather"},
    ]
    path, body = openai_request(messages=messages, tools=[WEATHER_TOOL_OPENAI])
    assert client.post(path, json=body).json()["choices"][0]["finish_reason"] == "stop"


def test_anthropic_tool_use_answer(client: httpx.Client) -> None:
    path, body = anthropic_request(
        text="weather in Paris?", tools=[{"name": "get_weather", "input_schema": {"type": "object"}}]
    )
    data = client.post(path, json=body).json()
    assert data["stop_reason"] == "tool_use"
    block = data["content"][0]
    assert block["type"] == "tool_use"
    assert block["id"].startswith("toolu_")
    assert (block["name"], block["input"]) == ("get_weather", {"location": "Paris"})


def test_gemini_function_call_answer(client: httpx.Client) -> None:
    path, body = gemini_request(
        text="weather in Paris?",
        tools=[{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "object"}}]}],
    )
    candidate = client.post(path, json=body).json()["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}
    ]


def test_anthropic_and_gemini_forced_tool_choices_get_tool_calls(client: httpx.Client) -> None:
    tools = [{"name": "get_weather", "input_schema": {}}, {"name": "lookup", "input_schema": {}}]
    path, body = anthropic_request(tools=tools, tool_choice={"type": "any"})
    assert client.post(path, json=body).json()["content"][0]["name"] == "get_weather"
    path, body = anthropic_request(tools=tools, tool_choice={"type": "tool", "name": "lookup"})
    assert client.post(path, json=body).json()["content"][0]["name"] == "lookup"
    declarations = [{"functionDeclarations": [{"name": "get_weather"}, {"name": "lookup"}]}]
    path, body = gemini_request(
        tools=declarations,
        toolConfig={"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}},
    )
    part = client.post(path, json=body).json()["candidates"][0]["content"]["parts"][0]
    assert part["functionCall"]["name"] == "lookup"


def test_openai_stream_has_role_content_finish_usage_and_done(client: httpx.Client) -> None:
    path, body = openai_request(stream=True, stream_options={"include_usage": True})
    response = client.post(path, json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [data for _, data in sse_events(response.text)]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(data) for data in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert content == EXPECTED_TEXT.format(model="gpt-4o-mini")
    assert len(chunks) == 1 + len(content.split()) + 2  # role, one per word, finish, usage
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == len(content.split())


def test_openai_stream_without_include_usage_has_no_usage_chunk(client: httpx.Client) -> None:
    path, body = openai_request(stream=True)
    chunks = [json.loads(d) for _, d in sse_events(client.post(path, json=body).text)[:-1]]
    assert all(c["choices"] and "usage" not in c for c in chunks)


def test_openai_tool_call_stream_carries_indexed_argument_fragments(client: httpx.Client) -> None:
    path, body = openai_request(text="weather?", tools=[WEATHER_TOOL_OPENAI], stream=True)
    chunks = [json.loads(d) for _, d in sse_events(client.post(path, json=body).text)[:-1]]
    first_call = chunks[0]["choices"][0]["delta"]["tool_calls"][0]
    assert (first_call["index"], first_call["function"]["name"]) == (0, "get_weather")
    arguments = "".join(
        call["function"]["arguments"]
        for c in chunks
        for call in c["choices"][0]["delta"].get("tool_calls", [])
    )
    assert json.loads(arguments) == {"location": "Paris"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_deepseek_stream_starts_with_a_keep_alive_comment(client: httpx.Client) -> None:
    path, body = deepseek_request(stream=True, stream_options={"include_usage": True})
    raw = client.post(path, json=body).text
    assert raw.startswith(": keep-alive\n\n")
    events = sse_events(raw)
    assert events[-1][1] == "[DONE]"
    assert "prompt_cache_hit_tokens" in json.loads(events[-2][1])["usage"]


def test_anthropic_stream_follows_the_event_sequence(client: httpx.Client) -> None:
    path, body = anthropic_request(stream=True)
    events = sse_events(client.post(path, json=body).text)
    names = [name for name, _ in events]
    words = len(EXPECTED_TEXT.format(model="claude-haiku-4-5").split())
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * words,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    payloads = [json.loads(data) for _, data in events]
    assert all(p["type"] == name for p, name in zip(payloads, names, strict=True))
    assert payloads[0]["message"]["usage"]["input_tokens"] == prompt_tokens(QUESTION)
    text = "".join(p["delta"]["text"] for p in payloads if p["type"] == "content_block_delta")
    assert text == EXPECTED_TEXT.format(model="claude-haiku-4-5")
    assert payloads[-2]["delta"]["stop_reason"] == "end_turn"
    assert payloads[-2]["usage"]["output_tokens"] == words


def test_anthropic_tool_stream_sends_input_json_deltas(client: httpx.Client) -> None:
    path, body = anthropic_request(
        text="weather?", stream=True, tools=[{"name": "get_weather", "input_schema": {"type": "object"}}]
    )
    payloads = [json.loads(d) for _, d in sse_events(client.post(path, json=body).text)]
    start = next(p for p in payloads if p["type"] == "content_block_start")
    assert start["content_block"]["type"] == "tool_use"
    partial = "".join(p["delta"]["partial_json"] for p in payloads if p["type"] == "content_block_delta")
    assert json.loads(partial) == {"location": "Paris"}
    assert next(p for p in payloads if p["type"] == "message_delta")["delta"]["stop_reason"] == "tool_use"


def test_gemini_stream_uses_crlf_frames_and_puts_final_usage_on_the_last(client: httpx.Client) -> None:
    path, body = gemini_request(stream=True)
    raw = client.post(path, json=body).text
    frames = raw.split("\r\n\r\n")
    assert frames[-1] == ""  # the stream just ends: no [DONE]
    chunks = [json.loads(frame.removeprefix("data: ")) for frame in frames[:-1]]
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == EXPECTED_TEXT.format(model="gemini-2.5-flash")
    assert "finishReason" not in chunks[0]["candidates"][0]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == len(text.split())


def test_gemini_stream_needs_alt_sse(client: httpx.Client) -> None:
    _, body = gemini_request()
    response = client.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize("chunks", [3, 64])
def test_a_chunks_rule_streams_exactly_that_many_content_chunks(client: httpx.Client, chunks: int) -> None:
    client.post("/__control", json={"model": "*", "status": 200, "chunks": chunks})
    path, body = openai_request(stream=True)
    events = sse_events(client.post(path, json=body).text)
    contents = [json.loads(d)["choices"][0]["delta"].get("content") for _, d in events[1:-2]]
    assert len(contents) == chunks
    assert all(contents)
    path, body = anthropic_request(stream=True)
    names = [name for name, _ in sse_events(client.post(path, json=body).text)]
    assert names.count("content_block_delta") == chunks
    path, body = gemini_request(stream=True)
    assert len(sse_events(client.post(path, json=body).text)) == chunks


def test_429_twice_then_success_with_retry_after(client: httpx.Client) -> None:
    client.post("/__control", json={"model": "gpt-4o-mini", "status": 429, "times": 2, "retry_after": 1})
    path, body = openai_request()
    for _ in range(2):
        response = client.post(path, json=body)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "1"
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["code"] == "rate_limit_exceeded"
    assert client.post(path, json=body).status_code == 200
    assert client.get("/__control").json()["rules"] == []


def test_error_rules_stack_in_order(client: httpx.Client) -> None:
    client.post(
        "/__control",
        json=[
            {"model": "gpt-4o-mini", "status": 429, "times": 1},
            {"model": "gpt-4o-mini", "status": 500, "times": 1},
        ],
    )
    path, body = openai_request()
    statuses = [client.post(path, json=body).status_code for _ in range(3)]
    assert statuses == [429, 500, 200]


def test_529_for_an_anthropic_model_uses_anthropic_error_body(client: httpx.Client) -> None:
    client.post("/__control", json={"model": "claude-haiku-4-5", "status": 529})
    path, body = anthropic_request()
    response = client.post(path, json=body)
    assert response.status_code == 529
    data = response.json()
    assert data["type"] == "error"
    assert data["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert data["request_id"].startswith("req_")


def test_gemini_429_carries_retry_info(client: httpx.Client) -> None:
    client.post("/__control", json={"model": "gemini-2.5-flash", "status": 429, "retry_after": 2.5})
    path, body = gemini_request()
    response = client.post(path, json=body)
    assert response.status_code == 429
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    retry = [d for d in error["details"] if d["@type"].endswith("google.rpc.RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]


def test_deepseek_error_uses_the_openai_like_envelope(client: httpx.Client) -> None:
    client.post("/__control", json={"model": "deepseek-chat", "status": 503, "message": "Server Overloaded"})
    path, body = deepseek_request()
    response = client.post(path, json=body)
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "Server Overloaded"


def test_error_type_and_code_can_be_overridden(client: httpx.Client) -> None:
    client.post(
        "/__control",
        json={
            "model": "gpt-4o-mini",
            "status": 429,
            "error_type": "insufficient_quota",
            "error_code": "insufficient_quota",
        },
    )
    path, body = openai_request()
    error = client.post(path, json=body).json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")


def test_delay_holds_the_answer_back(client: httpx.Client) -> None:
    client.post("/__control", json={"model": "gpt-4o-mini", "delay_ms": 300})
    path, body = openai_request()
    started = time.monotonic()
    assert client.post(path, json=body).status_code == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(httpx.ReadTimeout):
        client.post(path, json=body, timeout=0.1)


def test_chunk_delay_spaces_the_stream_out(client: httpx.Client) -> None:
    client.post("/__control", json={"model": "gpt-4o-mini", "chunks": 4, "chunk_delay_ms": 50})
    path, body = openai_request(stream=True)
    started = time.monotonic()
    client.post(path, json=body)
    assert time.monotonic() - started >= 0.15


def test_keepalive_fills_the_chunk_delay_with_sse_comments(client: httpx.Client) -> None:
    client.post(
        "/__control", json={"model": "gpt-4o-mini", "chunks": 3, "chunk_delay_ms": 300, "keepalive_ms": 50}
    )
    path, body = openai_request(stream=True)
    raw = client.post(path, json=body).text
    # Between consecutive events: no comment before the first content chunk, five during each 300 ms wait
    # (one at each whole 50 ms strictly inside it), none once the content is out.
    pieces = [piece for piece in raw.split("\n\n") if piece]
    gaps, run = [], 0
    for piece in pieces:
        if piece == ": keep-alive":
            run += 1
        else:
            gaps.append(run)
            run = 0
    assert run == 0 and raw.endswith("data: [DONE]\n\n")
    waits = [gap for gap in gaps if gap]
    assert waits == [5, 5], gaps  # one at each whole 50 ms inside each 300 ms wait, however busy the machine
    assert gaps[:2] == [0, 0]  # the role chunk and the first content chunk come at once
    events = sse_events(raw)
    assert sum(1 for _, data in events if '"content"' in data) >= 3


def test_disconnect_after_chunks_breaks_the_stream(client: httpx.Client) -> None:
    client.post("/__control", json={"model": "gpt-4o-mini", "disconnect_after_chunks": 3})
    path, body = openai_request(stream=True)
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError), client.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                received.append(line)
    assert len(received) == 1 + 3  # the role chunk, then three content chunks
    assert "[DONE]" not in "".join(received)


def test_disconnect_breaks_anthropic_and_gemini_streams_too(client: httpx.Client) -> None:
    client.post("/__control", json={"model": "*", "disconnect_after_chunks": 2})
    for path, body in (anthropic_request(stream=True), gemini_request(stream=True)):
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(path, json=body)


def test_disconnect_breaks_a_non_streaming_answer(client: httpx.Client) -> None:
    client.post("/__control", json={"model": "gpt-4o-mini", "disconnect_after_chunks": 0})
    path, body = openai_request()
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(path, json=body)


def test_a_star_rule_applies_to_every_model(client: httpx.Client) -> None:
    client.post("/__control", json={"model": "*", "status": 503})
    for builder in VENDOR_REQUESTS.values():
        path, body = builder()
        assert client.post(path, json=body).status_code == 503


def test_delete_control_clears_rules_and_recordings(
    client: httpx.Client, upstream: FakeUpstreamProcess
) -> None:
    upstream.control(model="gpt-4o-mini", status=500)
    path, body = openai_request()
    assert client.post(path, json=body).status_code == 500
    assert upstream.requests()
    assert client.delete("/__control").json() == {"ok": True}
    assert client.get("/__control").json() == {"rules": []}
    assert upstream.requests() == []
    assert client.post(path, json=body).status_code == 200


def test_requests_are_recorded_with_auth_masked(client: httpx.Client, upstream: FakeUpstreamProcess) -> None:
    path, body = openai_request()
    client.post(path, json=body, headers={"Authorization": "Bearer sk-secret", "X-Custom": "kept"})
    path, body = anthropic_request()
    client.post(path, json=body, headers={"x-api-key": "sk-ant-secret"})
    path, body = gemini_request()
    client.post(path + "?key=AIza-secret", json=body, headers={"x-goog-api-key": "AIza-secret"})
    recorded = upstream.requests()
    assert [r["model"] for r in recorded] == ["gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash"]
    assert recorded[0]["path"] == "/v1/chat/completions"
    assert recorded[0]["body"] == openai_request()[1]
    assert recorded[0]["headers"]["authorization"] == "***"
    assert recorded[0]["headers"]["x-custom"] == "kept"
    assert recorded[1]["headers"]["x-api-key"] == "***"
    assert recorded[2]["headers"]["x-goog-api-key"] == "***"
    assert "secret" not in json.dumps(recorded)
    assert [r["model"] for r in upstream.requests(model="claude-haiku-4-5")] == ["claude-haiku-4-5"]
    assert client.delete("/__requests").json() == {"ok": True}
    assert upstream.requests() == []


def test_stats_count_requests_per_model(client: httpx.Client, upstream: FakeUpstreamProcess) -> None:
    for builder in (openai_request, openai_request, anthropic_request):
        path, body = builder()
        client.post(path, json=body)
    assert upstream.stats() == {"total": 3, "models": {"gpt-4o-mini": 2, "claude-haiku-4-5": 1}}


def test_control_refuses_unknown_keys(client: httpx.Client) -> None:
    response = client.post("/__control", json={"model": "gpt-4o-mini", "statuss": 500})
    assert response.status_code == 400
    assert "statuss" in response.json()["error"]


def test_unknown_paths_answer_404(client: httpx.Client) -> None:
    assert client.post("/v2/nothing", json={}).status_code == 404


def test_rule_book_fires_non_error_rules_alongside_the_first_error_rule() -> None:
    book = RuleBook()
    book.add(parse_rule({"model": "*", "delay_ms": 5}))
    book.add(parse_rule({"model": "m", "status": 429, "times": 1}))
    book.add(parse_rule({"model": "m", "status": 200, "chunks": 8}))
    first, second = book.fire("m"), book.fire("m")
    assert (first.status, first.delay_ms, first.chunks) == (429, 5, 8)
    assert (second.status, second.delay_ms, second.chunks) == (200, 5, 8)
    assert book.fire("other").chunks is None


def test_rule_validation_refuses_bad_values() -> None:
    for bad in (
        {"status": 500},
        {"model": "m", "times": 0},
        {"model": "m", "delay_ms": "1"},
        {"model": "m", "status": 99},
        {"model": "m", "cache_write_1h_tokens": -1},
        {"model": "m", "cache_write_1h_tokens": 1.5},
    ):
        with pytest.raises(RuleError):
            parse_rule(bad)
