"""End to end: the openai SDK's Responses API and the OpenAI Agents SDK against /v1/responses, each vendor."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from budgets.models import Reservation
from routing.models import GatewayRequest

pytestmark = pytest.mark.e2e
MODELS = ["gpt-4o-mini", "claude-sonnet-4.5", "gemini-2.5-flash"]
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
    "strict": False,
}


def _row(request_id: str) -> GatewayRequest:
    return GatewayRequest.objects.get(pk=request_id)


def _request_id(response) -> str:
    return response.model_extra["router"]["request_id"]


@pytest.mark.parametrize("model", MODELS)
def test_responses_create_answers_on_every_vendor_and_is_stored(sdk, fake_upstream, model):
    response = sdk.responses.create(
        model=model, input="What is the capital of France?", instructions="Be brief."
    )
    assert response.status == "completed" and response.id.startswith("resp_")
    assert "fake answer" in response.output_text
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    row = _row(_request_id(response))
    assert row.door == "responses" and row.stored and row.total_cost_usd > 0
    native = fake_upstream.requests()[-1]["format"] == "openai-responses"
    assert native == model.startswith("gpt")

    again = sdk.responses.retrieve(response.id)
    assert again.id == response.id and again.output_text == response.output_text
    assert again.instructions == "Be brief."


@pytest.mark.parametrize("model", MODELS)
def test_the_stream_helper_gets_the_final_response_on_every_vendor(sdk, model):
    with sdk.responses.stream(model=model, input="Tell me about Paris.") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text and "fake answer" in final.output_text
    assert final.status == "completed" and final.usage.output_tokens > 0
    row = GatewayRequest.objects.get(door="responses")  # a native stream carries OpenAI's events as they are
    assert row.stream and row.door == "responses" and row.response_text == final.output_text


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_a_function_tool_round_trip_through_previous_response_id(sdk, model, stream):
    ask = "What is the weather in Paris?"
    if stream:
        with sdk.responses.stream(model=model, input=ask, tools=[WEATHER_TOOL]) as events:
            first = events.get_final_response()
    else:
        first = sdk.responses.create(model=model, input=ask, tools=[WEATHER_TOOL])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"location": "Paris"} and len(calls[0].call_id) <= 40

    second = sdk.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny, 21 C"}],
        tools=[WEATHER_TOOL],
    )
    assert second.status == "completed" and second.output_text
    row = _row(_request_id(second))
    # The conversation was rebuilt from our own log: the question, the call and its output.
    roles = [m["role"] for m in row.messages]
    assert roles == ["user", "assistant", "tool"]


def test_another_users_response_is_not_found_and_cannot_be_continued(sdk, e2e, bob_key):
    mine = sdk.responses.create(model="gpt-4o-mini", input="secret plans")
    bob = openai.OpenAI(base_url=e2e.url + "/v1", api_key=bob_key, max_retries=0, timeout=30)
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(mine.id)
    with pytest.raises(openai.BadRequestError) as raised:
        bob.responses.create(model="gpt-4o-mini", input="and then?", previous_response_id=mine.id)
    assert raised.value.body["code"] == "previous_response_not_found"
    assert raised.value.body["param"] == "previous_response_id"


def test_delete_forgets_a_response_but_keeps_its_row_and_cost(sdk):
    response = sdk.responses.create(model="gpt-4o-mini", input="forget me")
    deleted = sdk.responses.delete(response.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(response.id)
    row = _row(_request_id(response))
    assert not row.stored and row.total_cost_usd > 0


def test_store_false_is_not_kept(sdk):
    response = sdk.responses.create(model="claude-sonnet-4.5", input="ephemeral", store=False)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(response.id)


@pytest.mark.parametrize("model", MODELS)
def test_a_stream_cut_midway_ends_in_response_failed_and_is_logged_and_charged(
    e2e, alice_key, fake_upstream, model
):
    upstream_model = {"claude-sonnet-4.5": "claude-sonnet-4-5-20250929"}.get(model, model)
    fake_upstream.control(model=upstream_model, disconnect_after_chunks=3, chunks=8)
    with httpx.stream(
        "POST",
        e2e.url + "/v1/responses",
        headers={"Authorization": f"Bearer {alice_key}"},
        json={"model": model, "input": "Tell me a long story", "stream": True},
        timeout=30,
    ) as response:
        events = [
            line.removeprefix("event: ") for line in response.iter_lines() if line.startswith("event: ")
        ]
    assert events[0] == "response.created" and events[-1] == "response.failed"
    assert "response.completed" not in events
    row = _row(response.headers["X-Request-Id"])
    assert row.status == "error" and row.error_code == "stream_interrupted"
    assert row.output_tokens > 0 and row.total_cost_usd > 0
    assert not Reservation.objects.filter(request_id=row.id, status="held").exists()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi"}, "model"),
        ({"model": "gpt-4o-mini", "input": 5}, "input"),
        ({"model": "gpt-4o-mini", "input": "hi", "max_output_tokens": 3}, "max_output_tokens"),
        ({"model": "gpt-4o-mini", "input": "hi", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        (
            {
                "model": "gpt-4o-mini",
                "input": [{"type": "function_call_output", "call_id": "x", "output": "y"}],
            },
            "input",
        ),
        ({"model": "gpt-4o-mini", "input": "hi", "conversation": "conv_1"}, "conversation"),
    ],
)
def test_bad_input_is_a_400_in_the_openai_envelope_and_writes_nothing(
    e2e, alice_key, fake_upstream, body, param
):
    before = GatewayRequest.objects.count()
    response = httpx.post(
        e2e.url + "/v1/responses", json=body, headers={"Authorization": f"Bearer {alice_key}"}, timeout=30
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert GatewayRequest.objects.count() == before and fake_upstream.requests() == []


@pytest.mark.parametrize("model", MODELS)
def test_the_agents_sdk_default_model_runs_a_function_tool_loop(e2e, alice_key, model):
    from agents import Agent, Runner, function_tool, set_default_openai_client, set_tracing_disabled

    calls: list[str] = []

    @function_tool
    def get_weather(location: str) -> str:
        """The weather in a city."""
        calls.append(location)
        return f"Sunny and 21 C in {location}"

    set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=e2e.url + "/v1", api_key=alice_key, max_retries=0, timeout=30)
    set_default_openai_client(client, use_for_tracing=False)
    agent = Agent(name="Weather", instructions="Answer weather questions.", tools=[get_weather], model=model)
    result = Runner.run_sync(agent, "What is the weather in Paris?")
    assert calls == ["Paris"]
    assert result.final_output and "fake answer" in result.final_output
    rows = GatewayRequest.objects.filter(door="responses", status="success").order_by("created_at")
    assert rows.count() == 2 and {r.requested_model for r in rows} == {model}
