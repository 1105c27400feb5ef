"""End to end (#18): agent loops through the gateway complete against the fake upstream, on every door and
vendor. The tool's schema requires `city` (the fake used to answer {"location": "Paris"} whatever the schema),
structured output gets JSON that validates, and the final answer is built on the tool's result."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import jsonschema
import openai
import pytest
from pydantic import BaseModel

from routing.models import GatewayRequest

pytestmark = pytest.mark.e2e
MODELS = ["gpt-4o-mini", "claude-sonnet-4.5", "gemini-2.5-flash"]
QUESTION = "What is the weather in Paris?"
CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "summary": {"type": "string"},
        "temperature": {"type": "integer", "minimum": -50, "maximum": 60},
    },
    "required": ["city", "summary", "temperature"],
    "additionalProperties": False,
}


def weather(city: str) -> str:
    return f"Sunny and 21 C in {city}"


class WeatherReport(BaseModel):
    city: str
    summary: str


def _agent_client(e2e: Any, key: str) -> openai.AsyncOpenAI:
    from agents import set_default_openai_client, set_tracing_disabled

    set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=e2e.url + "/v1", api_key=key, max_retries=0, timeout=30)
    set_default_openai_client(client, use_for_tracing=False)
    return client


def _weather_agent(calls: list[str], **options: Any) -> Any:
    from agents import Agent, function_tool

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return weather(city)

    return Agent(name="Weather", instructions="Answer weather questions.", tools=[get_weather], **options)


@pytest.mark.parametrize("model", MODELS)
def test_an_agents_sdk_loop_with_a_city_tool_completes_through_the_responses_door(e2e, alice_key, model):
    from agents import Runner

    _agent_client(e2e, alice_key)
    calls: list[str] = []
    agent = _weather_agent(calls, model=model)
    assert agent.tools[0].params_json_schema["required"] == ["city"]  # strict: {"location": ...} is refused
    result = Runner.run_sync(agent, QUESTION, max_turns=4)
    assert calls == ["Paris"]
    assert weather("Paris") in result.final_output and result.final_output.endswith(".")
    rows = GatewayRequest.objects.filter(door="responses", status="success").order_by("created_at")
    assert rows.count() == 2 and {r.requested_model for r in rows} == {model}


@pytest.mark.parametrize("model", MODELS)
def test_an_agents_sdk_loop_through_the_chat_completions_door(e2e, alice_key, model):
    from agents import OpenAIChatCompletionsModel, Runner

    client = _agent_client(e2e, alice_key)
    calls: list[str] = []
    agent = _weather_agent(calls, model=OpenAIChatCompletionsModel(model=model, openai_client=client))
    result = Runner.run_sync(agent, QUESTION, max_turns=4)
    assert calls == ["Paris"] and weather("Paris") in result.final_output
    assert GatewayRequest.objects.filter(door="chat", status="success").count() == 2


@pytest.mark.parametrize("model", MODELS)
def test_an_agents_sdk_loop_with_structured_output_ends_in_a_parsed_model(e2e, alice_key, model):
    from agents import Runner

    _agent_client(e2e, alice_key)
    calls: list[str] = []
    agent = _weather_agent(calls, model=model, output_type=WeatherReport)
    result = Runner.run_sync(agent, QUESTION, max_turns=4)
    assert calls == ["Paris"]
    report = result.final_output
    assert isinstance(report, WeatherReport)
    assert report.city == "Paris" and weather("Paris") in report.summary


@pytest.mark.parametrize("model", MODELS)
def test_a_messages_tool_loop_gets_schema_arguments_then_an_answer_on_the_result(e2e, alice_key, model):
    claude = anthropic.Anthropic(base_url=e2e.url, api_key=alice_key, max_retries=0, timeout=30)
    tools: Any = [{"name": "get_weather", "description": "The weather", "input_schema": CITY_SCHEMA}]
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    for _turn in range(4):
        message = claude.messages.create(model=model, max_tokens=300, messages=messages, tools=tools)
        if message.stop_reason != "tool_use":
            break
        [call] = [block for block in message.content if block.type == "tool_use"]
        jsonschema.validate(call.input, CITY_SCHEMA)
        messages += [
            {
                "role": "assistant",
                "content": [block.model_dump(exclude_none=True) for block in message.content],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": weather(call.input["city"])}
                ],
            },
        ]
    assert message.stop_reason == "end_turn" and len(messages) == 3  # one tool call, then the answer
    assert weather("Paris") in message.content[0].text


@pytest.mark.parametrize("model", [*MODELS, "deepseek-chat"])
def test_chat_json_modes_answer_json_on_every_vendor(sdk, model):
    plain = sdk.chat.completions.create(
        model=model, messages=[{"role": "user", "content": QUESTION}], response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(plain.choices[0].message.content), dict)
    structured = sdk.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": QUESTION}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "report", "schema": REPORT_SCHEMA, "strict": True},
        },
    )
    report = json.loads(structured.choices[0].message.content)
    if model != "deepseek-chat":  # DeepSeek has json_object only: the schema is not sent
        jsonschema.validate(report, REPORT_SCHEMA)
        assert report["city"] == "Paris"
    assert structured.choices[0].finish_reason == "stop"


# The answer is 15 words (7 + 8): a limit of 12 keeps the first sentence; gemini-2.5 thinks 10 of its own.
@pytest.mark.parametrize(
    ("model", "limit"), [("gpt-4o-mini", 12), ("claude-sonnet-4.5", 12), ("gemini-2.5-flash", 22)]
)
def test_a_chat_answer_cut_by_max_tokens_ends_at_a_whole_sentence(sdk, model, limit):
    response = sdk.chat.completions.create(
        model=model, messages=[{"role": "user", "content": QUESTION}], max_tokens=limit
    )
    text = response.choices[0].message.content
    assert response.choices[0].finish_reason == "length"
    assert text.startswith("This is a fake answer from") and text.endswith(".")
