"""The fake upstream speaks OpenAI's Responses API, as the openai SDK and our native adapter expect it."""

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from providers.adapters.base import ChatRequest, ProviderConfig, ProviderError, StreamDelta, Usage
from providers.adapters.openai import OpenAIAdapter
from providers.fake_upstream import FakeUpstreamProcess

QUESTION = "Hello there, how are you doing today, my dear friend?"
# Whole sentences: the model, then the question quoted back (#18: it used to end mid-sentence, at 40 characters).
EXPECTED_TEXT = f'This is a fake answer from {{model}}. You asked "{QUESTION}".'
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    "strict": False,
}
LONG_ANSWER = " ".join(f"word{i}" for i in range(30))


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstreamProcess]:
    with FakeUpstreamProcess() as process:
        yield process


@pytest.fixture
def sdk(upstream: FakeUpstreamProcess) -> Iterator[openai.OpenAI]:
    upstream.clear()
    with openai.OpenAI(base_url=upstream.base_urls["openai"], api_key="sk-test", max_retries=0) as client:
        yield client


@pytest.fixture
def http(upstream: FakeUpstreamProcess) -> Iterator[httpx.Client]:
    upstream.clear()
    with httpx.Client(base_url=upstream.url, timeout=10) as client:
        yield client


def prompt_tokens(*texts: str) -> int:
    return math.ceil(sum(len(t) for t in texts) / 4) + 3 * len(texts)


def events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each SSE frame."""
    parsed = []
    for block in raw.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines:
            parsed.append((lines.get("event", ""), json.loads(lines["data"])))
    return parsed


# --- plain ------------------------------------------------------------------------------------------------


def test_a_string_input_gets_a_completed_response_with_responses_usage(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(model="gpt-4o-mini", input=QUESTION, instructions="Be brief.")

    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.instructions == "Be brief."
    assert response.output_text == EXPECTED_TEXT.format(model="gpt-4o-mini")
    [message] = response.output
    assert message.type == "message"
    assert message.id.startswith("msg_")
    assert response.usage is not None
    assert response.usage.input_tokens == prompt_tokens("Be brief.", QUESTION)
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.input_tokens_details.cache_write_tokens == 0
    assert response.usage.output_tokens == len(response.output_text.split())
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_cache_and_reasoning_rules_show_in_the_usage_details(
    sdk: openai.OpenAI, upstream: FakeUpstreamProcess
) -> None:
    upstream.control(model="o4-mini", cached_tokens=8, cache_write_tokens=2)

    response = sdk.responses.create(model="o4-mini", input=QUESTION)

    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.usage is not None
    assert response.usage.input_tokens_details.cached_tokens == 8
    assert response.usage.input_tokens_details.cache_write_tokens == 2
    assert response.usage.output_tokens_details.reasoning_tokens == 10
    assert response.usage.output_tokens == len(response.output_text.split()) + 10


def test_message_items_count_every_turn_and_answer_the_last_user_text(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(
        model="gpt-4o-mini",
        input=[
            {"role": "developer", "content": "Be brief."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": QUESTION}]},
        ],
    )

    assert response.output_text == EXPECTED_TEXT.format(model="gpt-4o-mini")
    assert response.usage is not None
    assert response.usage.input_tokens == prompt_tokens("Be brief.", QUESTION)


def test_a_weather_question_with_tools_gets_a_function_call(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(
        model="gpt-4o-mini", input="What is the weather in Paris?", tools=[WEATHER_TOOL]
    )

    [call] = response.output
    assert call.type == "function_call"
    assert call.id.startswith("fc_")
    assert call.call_id.startswith("call_")
    assert len(call.call_id) <= 40  # replayed into chat as a tool-call id
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"location": "Paris"}
    assert response.status == "completed"
    assert response.tools[0].name == "get_weather"


def test_a_forced_tool_choice_gets_a_function_call_whatever_the_question(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(
        model="gpt-4o-mini",
        input=QUESTION,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "name": "get_weather"},
    )

    assert [item.type for item in response.output] == ["function_call"]


def test_a_function_call_output_turn_gets_a_text_answer(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(
        model="gpt-4o-mini",
        input=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "Sunny, 21C"},
        ],
        tools=[WEATHER_TOOL],
    )

    assert [item.type for item in response.output] == ["message"]
    assert response.output_text.startswith("This is a fake answer")


def test_max_output_tokens_cuts_the_answer_as_incomplete(
    sdk: openai.OpenAI, upstream: FakeUpstreamProcess
) -> None:
    upstream.control(model="gpt-4o-mini", answer=LONG_ANSWER)

    response = sdk.responses.create(model="gpt-4o-mini", input=QUESTION, max_output_tokens=16)

    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.max_output_tokens == 16
    assert response.output_text.split() == LONG_ANSWER.split()[:16]
    assert response.output[0].status == "incomplete"


def test_max_output_tokens_below_16_is_refused(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.responses.create(model="gpt-4o-mini", input=QUESTION, max_output_tokens=5)

    assert "Expected a value >= 16" in caught.value.message


# --- streamed ---------------------------------------------------------------------------------------------


def test_the_stream_helper_gets_the_full_event_sequence_and_a_final_response(sdk: openai.OpenAI) -> None:
    with sdk.responses.stream(model="gpt-4o-mini", input=QUESTION) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()

    words = len(EXPECTED_TEXT.format(model="gpt-4o-mini").split())
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * words,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert final.output_text == EXPECTED_TEXT.format(model="gpt-4o-mini")
    assert final.usage is not None
    assert final.usage.output_tokens == words


def test_stream_events_are_named_and_numbered_in_order(http: httpx.Client) -> None:
    response = http.post("/v1/responses", json={"model": "gpt-5", "input": QUESTION, "stream": True})

    assert response.headers["content-type"].startswith("text/event-stream")
    frames = events(response.text)
    assert all(name == data["type"] for name, data in frames)
    assert [data["sequence_number"] for _, data in frames] == list(range(len(frames)))
    assert len({data["response"]["id"] for _, data in frames if "response" in data}) == 1
    assert frames[2][1]["item"]["type"] == "reasoning"  # a reasoning model opens with its reasoning item
    assert "[DONE]" not in response.text


def test_a_streamed_function_call_sends_argument_deltas_then_done_with_the_name(sdk: openai.OpenAI) -> None:
    with sdk.responses.stream(model="gpt-4o-mini", input="Weather in Paris?", tools=[WEATHER_TOOL]) as stream:
        received = list(stream)
        final = stream.get_final_response()

    deltas = [event.delta for event in received if event.type == "response.function_call_arguments.delta"]
    [done] = [event for event in received if event.type == "response.function_call_arguments.done"]
    assert len(deltas) == 2
    assert "".join(deltas) == done.arguments
    assert done.name == "get_weather"
    [call] = final.output
    assert call.type == "function_call"
    assert json.loads(call.arguments) == {"location": "Paris"}


def test_a_stream_cut_by_max_output_tokens_ends_with_response_incomplete(
    sdk: openai.OpenAI, upstream: FakeUpstreamProcess
) -> None:
    upstream.control(model="gpt-4o-mini", answer=LONG_ANSWER)

    with sdk.responses.stream(model="gpt-4o-mini", input=QUESTION, max_output_tokens=16) as stream:
        received = list(stream)
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()

    last = received[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details is not None
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert len([event for event in received if event.type == "response.output_text.delta"]) == 16


# --- faults and recordings --------------------------------------------------------------------------------


def test_an_error_rule_answers_in_the_openai_envelope(
    sdk: openai.OpenAI, upstream: FakeUpstreamProcess
) -> None:
    upstream.control(model="gpt-4o-mini", status=429, retry_after=2, times=1)

    with pytest.raises(openai.RateLimitError) as caught:
        sdk.responses.create(model="gpt-4o-mini", input=QUESTION)

    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "2"
    assert sdk.responses.create(model="gpt-4o-mini", input=QUESTION).status == "completed"


def test_chunks_and_disconnect_rules_shape_and_cut_the_stream(
    http: httpx.Client, upstream: FakeUpstreamProcess
) -> None:
    upstream.control(model="gpt-4o-mini", chunks=4)
    body = {"model": "gpt-4o-mini", "input": QUESTION, "stream": True}
    kinds = [data["type"] for _, data in events(http.post("/v1/responses", json=body).text)]
    assert kinds.count("response.output_text.delta") == 4

    upstream.control(model="gpt-4o-mini", disconnect_after_chunks=2)
    received: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("POST", "/v1/responses", json=body) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("event: "):
                received.append(line.removeprefix("event: "))
    assert received[-2:] == ["response.output_text.delta"] * 2
    assert "response.completed" not in received


def test_requests_are_recorded_as_the_openai_responses_format(
    sdk: openai.OpenAI, upstream: FakeUpstreamProcess
) -> None:
    sdk.responses.create(model="gpt-4o-mini", input=QUESTION)

    [recorded] = upstream.requests()
    assert recorded["path"] == "/v1/responses"
    assert recorded["format"] == "openai-responses"
    assert recorded["body"] == {"model": "gpt-4o-mini", "input": QUESTION}
    assert recorded["headers"]["authorization"] == "***"


# --- our native adapter against it ------------------------------------------------------------------------


def native_request(upstream_model: str, **body: Any) -> ChatRequest:
    return ChatRequest(
        model=upstream_model,
        messages=[{"role": "user", "content": QUESTION}],
        native={"model": "alias", "input": QUESTION, **body},
    )


async def test_the_native_adapter_gets_a_response_and_its_usage(upstream: FakeUpstreamProcess) -> None:
    upstream.clear()
    config = ProviderConfig(name="openai", base_url=upstream.base_urls["openai"], api_key="sk-test")

    result = await OpenAIAdapter().complete(config, native_request("gpt-4o-mini"))

    assert result.content == EXPECTED_TEXT.format(model="gpt-4o-mini")
    assert result.finish_reason == "stop"
    assert result.raw is not None
    assert result.raw["object"] == "response"
    assert result.usage == Usage(
        prompt_tokens=prompt_tokens(QUESTION), completion_tokens=len(result.content.split())
    )
    assert upstream.requests()[0]["body"]["model"] == "gpt-4o-mini"


async def test_the_native_adapter_relays_the_stream_byte_for_byte(upstream: FakeUpstreamProcess) -> None:
    upstream.clear()
    config = ProviderConfig(name="openai", base_url=upstream.base_urls["openai"], api_key="sk-test")
    request = native_request("gpt-4o-mini", tools=[WEATHER_TOOL])
    request.native = {"model": "alias", "input": "Weather in Paris?", "tools": [WEATHER_TOOL]}

    deltas: list[StreamDelta] = [delta async for delta in OpenAIAdapter().stream(config, request)]

    async with httpx.AsyncClient(base_url=upstream.url) as http:
        direct = await http.post(
            "/v1/responses", json={**request.native, "model": "gpt-4o-mini", "stream": True}
        )
    relayed = b"".join(delta.raw for delta in deltas if delta.raw)
    assert [data["type"] for _, data in events(relayed.decode())] == [
        data["type"] for _, data in events(direct.text)
    ]
    arguments = "".join(
        call["function"]["arguments"]
        for delta in deltas
        for call in delta.tool_calls or []
        if "id" not in call
    )
    assert json.loads(arguments) == {"location": "Paris"}
    assert [delta.finish_reason for delta in deltas if delta.finish_reason] == ["tool_calls"]


async def test_the_native_adapter_reports_a_cut_stream_as_a_partial_failure(
    upstream: FakeUpstreamProcess,
) -> None:
    upstream.clear()
    upstream.control(model="gpt-4o-mini", disconnect_after_chunks=3)
    config = ProviderConfig(name="openai", base_url=upstream.base_urls["openai"], api_key="sk-test")

    with pytest.raises(ProviderError) as caught:
        async for _ in OpenAIAdapter().stream(config, native_request("gpt-4o-mini")):
            pass

    assert caught.value.retryable is True
    assert caught.value.extra["partial"] is True
