"""The /v1/responses door: parsing into the canonical request, rendering and streaming back, checked with the SDK."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx2
import openai
import pytest

from config.api_errors import InvalidRequest, RateLimited, UpstreamError
from config.rendering import dumps
from providers.adapters.base import StreamDelta, Usage
from providers.pricing import Cost
from routing.doors.responses import (
    ResponsesDoor,
    continue_from,
    conversation_of,
    request_id_of,
    response_id,
)
from routing.pipeline.types import Completion, StreamMeta

DOOR = ResponsesDoor()
REQUEST_ID = "req_0123456789abcdef01234567"
RESP_ID = "resp_0123456789abcdef01234567"
CREATED = datetime(2025, 10, 16, 10, 30, tzinfo=UTC)
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


def parse(**fields: Any) -> Any:
    return DOOR.parse({"model": "gpt-4o-mini", "input": "Hi", **fields}, {})


def rejected(param: str, **fields: Any) -> InvalidRequest:
    return rejected_body(param, {"model": "gpt-4o-mini", **fields})


def rejected_body(param: str, body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        DOOR.parse(body, {})
    assert caught.value.param == param, caught.value.message
    assert caught.value.code == "invalid_value" and caught.value.status == 400
    return caught.value


def completion(**fields: Any) -> Completion:
    defaults: dict[str, Any] = {
        "request_id": REQUEST_ID,
        "model": "claude-sonnet-4-5-20250929",
        "provider": "anthropic",
        "content": "Hello there",
        "tool_calls": None,
        "finish_reason": "stop",
        "usage": Usage(
            prompt_tokens=20, completion_tokens=5, cached_tokens=4, reasoning_tokens=2, cache_write_tokens=3
        ),
        "cost": Cost(
            input_cost=Decimal("0.00000345"), output_cost=Decimal("0.0000048"), total=Decimal("0.00000825")
        ),
        "estimated_cost": Decimal("0.00001"),
        "cached": False,
        "created_at": CREATED,
        "latency_ms": 1500,
        "selection_mode": "manual",
        "models_considered": 1,
        "attempts": [{"model": "claude-sonnet-4-5-20250929", "provider": "anthropic", "status": "success"}],
    }
    return Completion(**{**defaults, **fields})


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def sdk_client(handler: Any, *, strict: bool = True) -> openai.OpenAI:
    # Strict validation makes the SDK check every field against its pydantic models, not just construct them.
    return openai.OpenAI(
        api_key="amr_test",
        base_url="http://gateway.test/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        _strict_response_validation=strict,
        max_retries=0,
    )


def json_handler(body: dict[str, Any]) -> Any:
    return lambda request: httpx2.Response(
        200, content=dumps(body), headers={"content-type": "application/json"}
    )


def sse_handler(chunks: list[bytes]) -> Any:
    return lambda request: httpx2.Response(
        200, content=b"".join(chunks), headers={"content-type": "text/event-stream"}
    )


def events(chunks: list[bytes]) -> list[dict[str, Any]]:
    parsed = []
    for chunk in chunks:
        assert chunk.endswith(b"\n\n")
        event_line, data_line = chunk.decode().rstrip("\n").split("\n")
        payload = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {payload['type']}"
        parsed.append(payload)
    return parsed


def meta(**fields: Any) -> StreamMeta:
    defaults: dict[str, Any] = {
        "request_id": REQUEST_ID,
        "model": "claude-sonnet-4-5-20250929",
        "provider": "anthropic",
        "created_at": CREATED,
        "prompt_tokens": 20,
        "native": False,
        "include_usage": True,
    }
    return StreamMeta(**{**defaults, **fields})


# -- parse: the request fields -------------------------------------------------------------------------


def test_a_string_input_is_one_user_message_and_the_body_goes_native_to_openai() -> None:
    body = {"model": "gpt-4o-mini", "input": "Hi"}
    inp = DOOR.parse(body, {})
    assert inp.messages == [{"role": "user", "content": "Hi"}]
    assert inp.door == "responses" and inp.model == "gpt-4o-mini"
    assert inp.stream is False and inp.include_usage is False and inp.store is True
    assert inp.native is not None and inp.native.provider == "openai" and inp.native.body == body
    assert inp.native.body is not body  # the pipeline may rewrite its copy


def test_instructions_become_the_first_system_message() -> None:
    inp = parse(instructions="Be brief.", input=[{"role": "user", "content": "Hi"}])
    assert inp.messages[0] == {"role": "system", "content": "Be brief."}
    assert inp.door_params["instructions"] == "Be brief."


def test_it_requires_a_model_and_an_input() -> None:
    rejected_body("model", {"input": "Hi"})
    rejected_body("model", {"model": 7, "input": "Hi"})
    rejected("input")
    rejected("input", input=[])
    rejected("input", input=42)


@pytest.mark.parametrize("field", ["conversation", "prompt", "background", "context_management"])
def test_stateful_and_hosted_features_are_refused(field: str) -> None:
    error = rejected(field, input="Hi", **{field: {"id": "x"} if field != "background" else True})
    assert "not supported" in error.message


def test_background_false_is_harmless() -> None:
    assert parse(background=False).messages


def test_sampling_and_length_fields_are_checked_and_translated() -> None:
    inp = parse(temperature=0.2, top_p=1, max_output_tokens=16)
    assert (inp.temperature, inp.top_p, inp.max_tokens) == (0.2, 1.0, 16)
    rejected("max_output_tokens", input="Hi", max_output_tokens=15)
    rejected("max_output_tokens", input="Hi", max_output_tokens=True)
    rejected("max_output_tokens", input="Hi", max_output_tokens=100.5)
    rejected("temperature", input="Hi", temperature=2.5)
    rejected("temperature", input="Hi", temperature="0.5")
    rejected("top_p", input="Hi", top_p=1.5)


def test_stream_asks_the_pipeline_for_usage() -> None:
    inp = parse(stream=True, stream_options={"include_obfuscation": False})
    assert inp.stream is True and inp.include_usage is True
    rejected("stream", input="Hi", stream="yes")


def test_store_defaults_to_true_and_can_be_turned_off() -> None:
    assert parse(store=None).store is True
    assert parse(store=False).store is False and parse(store=False).door_params["store"] is False
    rejected("store", input="Hi", store="no")


def test_flat_function_tools_become_chat_tools() -> None:
    inp = parse(tools=[WEATHER_TOOL, {"type": "function", "name": "now", "parameters": None, "strict": None}])
    assert inp.tools == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER_TOOL["parameters"],
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "now"}},
    ]
    assert inp.door_params["tools"][0] is WEATHER_TOOL  # echoed as sent, in the flat shape


@pytest.mark.parametrize("kind", ["web_search", "file_search", "computer_use_preview", "mcp", "custom"])
def test_hosted_tools_are_refused(kind: str) -> None:
    rejected("tools[1].type", input="Hi", tools=[WEATHER_TOOL, {"type": kind}])


def test_a_tool_needs_a_name_and_object_parameters() -> None:
    rejected("tools[0].name", input="Hi", tools=[{"type": "function", "parameters": {}}])
    rejected("tools[0].parameters", input="Hi", tools=[{"type": "function", "name": "f", "parameters": "x"}])
    rejected("tools", input="Hi", tools={"type": "function"})
    rejected("tools[0].strict", input="Hi", tools=[{"type": "function", "name": "f", "strict": "yes"}])


def test_tool_choice_translates_to_the_chat_forms() -> None:
    assert parse(tools=[WEATHER_TOOL], tool_choice="required").tool_choice == "required"
    named = parse(tools=[WEATHER_TOOL], tool_choice={"type": "function", "name": "get_weather"})
    assert named.tool_choice == {"type": "function", "function": {"name": "get_weather"}}
    assert named.door_params["tool_choice"] == {"type": "function", "name": "get_weather"}


def test_allowed_tools_narrows_the_tools_to_the_allowed_ones() -> None:
    other = {"type": "function", "name": "other", "parameters": {}}
    inp = parse(
        tools=[WEATHER_TOOL, other],
        tool_choice={
            "type": "allowed_tools",
            "mode": "required",
            "tools": [{"type": "function", "name": "other"}],
        },
    )
    assert inp.tool_choice == "required"
    assert [t["function"]["name"] for t in inp.tools] == ["other"]


def test_a_tool_choice_without_tools_is_dropped_and_a_bad_one_refused() -> None:
    inp = parse(tool_choice="auto", parallel_tool_calls=False)
    assert inp.tool_choice is None and inp.tools is None
    assert inp.door_params["parallel_tool_calls"] is False
    rejected("tool_choice", input="Hi", tools=[WEATHER_TOOL], tool_choice={"type": "web_search"})
    rejected(
        "tool_choice", input="Hi", tools=[WEATHER_TOOL], tool_choice={"type": "function", "name": "nope"}
    )
    rejected("tool_choice", input="Hi", tools=[WEATHER_TOOL], tool_choice="sometimes")
    rejected("parallel_tool_calls", input="Hi", parallel_tool_calls="yes")


def test_text_format_json_schema_is_flat_on_the_wire_and_nested_in_chat() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    inp = parse(text={"format": {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}})
    assert inp.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "thing", "schema": schema, "strict": True},
    }
    assert inp.uses_json()
    assert parse(text={"format": {"type": "json_object"}}).response_format == {"type": "json_object"}
    assert parse(text={"format": {"type": "text"}, "verbosity": "low"}).response_format is None
    rejected("text.format.type", input="Hi", text={"format": {"type": "yaml"}})
    rejected("text.format.name", input="Hi", text={"format": {"type": "json_schema", "schema": schema}})
    rejected("text.format.schema", input="Hi", text={"format": {"type": "json_schema", "name": "x"}})
    rejected("text.verbosity", input="Hi", text={"verbosity": "loud"})


def test_reasoning_is_checked_and_echoed() -> None:
    assert parse(reasoning={"effort": "low", "summary": "auto"}).door_params["reasoning"] == {
        "effort": "low",
        "summary": "auto",
    }
    rejected("reasoning.effort", input="Hi", reasoning={"effort": "enormous"})
    rejected("reasoning.summary", input="Hi", reasoning={"summary": "long"})


def test_metadata_is_string_pairs_within_openai_limits() -> None:
    assert parse(metadata={"team": "search"}).door_params["metadata"] == {"team": "search"}
    rejected("metadata", input="Hi", metadata={"k" * 65: "v"})
    rejected("metadata.k", input="Hi", metadata={"k": "v" * 513})
    rejected("metadata.k", input="Hi", metadata={"k": 1})
    rejected("metadata", input="Hi", metadata={str(i): "v" for i in range(17)})


def test_include_truncation_user_and_safety_identifier() -> None:
    inp = parse(include=[], truncation="auto", user="u-1", safety_identifier="hashed-user")
    assert inp.user == "hashed-user"
    assert inp.door_params["truncation"] == "auto" and inp.door_params["user"] == "u-1"
    assert parse(user="u-1").user == "u-1"
    rejected("include", input="Hi", include="reasoning.encrypted_content")
    rejected("truncation", input="Hi", truncation="sometimes")
    rejected("safety_identifier", input="Hi", safety_identifier="x" * 65)


def test_cache_control_and_the_client_request_id_are_honoured() -> None:
    inp = DOOR.parse(
        {"model": "m", "input": "Hi"}, {"cache-control": "no-cache", "X-Client-Request-Id": "abc"}
    )
    assert inp.cache_read is False and inp.cache_write is True and inp.client_request_id == "abc"


# -- parse: input items --------------------------------------------------------------------------------


def test_message_roles_and_text_parts() -> None:
    inp = parse(
        input=[
            {"role": "developer", "content": "Rules."},
            {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "More rules."}]},
            {
                "role": "user",
                "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}],
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": "Sure, ", "annotations": []},
                    {"type": "refusal", "refusal": "but no."},
                ],
            },
        ]
    )
    assert inp.messages == [
        {"role": "developer", "content": "Rules."},
        {"role": "system", "content": "More rules."},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": "Sure, but no."},
    ]


def test_images_and_files_become_chat_parts() -> None:
    inp = parse(
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "low"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "original"},
                    {
                        "type": "input_file",
                        "file_data": "data:application/pdf;base64,JVBE",
                        "filename": "a.pdf",
                    },
                ],
            }
        ]
    )
    assert inp.messages[0]["content"][1:] == [
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}},
    ]
    assert inp.uses_images()


def test_file_ids_and_misplaced_parts_are_refused() -> None:
    def user(part: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"role": "user", "content": [part]}]

    rejected(
        "input[0].content[0].file_id",
        input=user({"type": "input_image", "file_id": "file-1", "detail": "auto"}),
    )
    rejected("input[0].content[0].image_url", input=user({"type": "input_image", "detail": "auto"}))
    rejected(
        "input[0].content[0].detail",
        input=user({"type": "input_image", "image_url": "https://x", "detail": "max"}),
    )
    rejected("input[0].content[0].file_id", input=user({"type": "input_file", "file_id": "file-1"}))
    rejected(
        "input[0].content[0].file_url", input=user({"type": "input_file", "file_url": "https://x/a.pdf"})
    )
    rejected("input[0].content[0].type", input=user({"type": "input_audio"}))
    rejected(
        "input[0].content[0].type",
        input=[{"role": "assistant", "content": [{"type": "input_image", "image_url": "https://x"}]}],
    )
    rejected("input[0].role", input=[{"role": "tool", "content": "x"}])
    rejected("input[0].content", input=[{"role": "user", "content": []}])
    rejected("input[0].content", input=[{"role": "user", "content": 3}])
    rejected("input[0]", input=["hello"])


def test_function_calls_merge_into_the_assistant_turn_and_outputs_become_tool_messages() -> None:
    inp = parse(
        input=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Checking."}],
            },
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {
                "type": "function_call",
                "id": "fc_x",
                "call_id": "call_2",
                "name": "get_weather",
                "arguments": "{}",
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [{"type": "input_text", "text": "21C"}],
            },
        ]
    )
    assert inp.messages[1:] == [
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                tool_call("call_1", "get_weather", '{"city":"Paris"}'),
                tool_call("call_2", "get_weather", "{}"),
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
    ]


def test_calls_with_no_text_before_them_open_their_own_assistant_message() -> None:
    inp = parse(
        input=[
            {"role": "user", "content": "Go"},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
            {"type": "function_call", "call_id": "call_2", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_2", "output": "ok"},
        ]
    )
    roles = [(m["role"], len(m.get("tool_calls") or [])) for m in inp.messages]
    assert roles == [("user", 0), ("assistant", 1), ("tool", 0), ("assistant", 1), ("tool", 0)]
    assert inp.messages[1]["content"] is None


def test_a_call_id_too_long_for_chat_is_shortened_the_same_way_in_call_and_output() -> None:
    long_id = "toolu_" + "x" * 60
    inp = parse(
        input=[
            {"type": "function_call", "call_id": long_id, "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": long_id, "output": "ok"},
        ]
    )
    short = inp.messages[0]["tool_calls"][0]["id"]
    assert short.startswith("call_") and len(short) == 29
    assert inp.messages[1]["tool_call_id"] == short


def test_reasoning_items_are_dropped_from_the_canonical_form_but_kept_for_openai() -> None:
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"}
    inp = parse(input=[{"role": "user", "content": "Hi"}, reasoning, {"role": "assistant", "content": "Yo"}])
    assert [m["role"] for m in inp.messages] == ["user", "assistant"]
    assert inp.native is not None and reasoning in inp.native.body["input"]


@pytest.mark.parametrize(
    "kind", ["item_reference", "web_search_call", "computer_call", "mcp_call", "compaction"]
)
def test_other_input_item_types_are_refused(kind: str) -> None:
    rejected("input[1].type", input=[{"role": "user", "content": "Hi"}, {"type": kind, "id": "x"}])


def test_function_call_items_need_an_id_a_name_and_string_arguments() -> None:
    rejected("input[0].call_id", input=[{"type": "function_call", "name": "f", "arguments": "{}"}])
    rejected("input[0].name", input=[{"type": "function_call", "call_id": "c", "arguments": "{}"}])
    rejected(
        "input[0].arguments", input=[{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]
    )
    rejected("input[0].call_id", input=[{"type": "function_call_output", "output": "x"}])
    rejected(
        "input[1].output", input=[*_call("c"), {"type": "function_call_output", "call_id": "c", "output": 1}]
    )
    rejected(
        "input[1].output[0].type",
        input=[
            *_call("c"),
            {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image"}]},
        ],
    )


def _call(call_id: str) -> list[dict[str, Any]]:
    return [{"type": "function_call", "call_id": call_id, "name": "f", "arguments": "{}"}]


def test_an_orphan_function_call_output_is_refused() -> None:
    error = rejected(
        "input",
        input=[
            {"role": "user", "content": "Hi"},
            {"type": "function_call_output", "call_id": "call_nowhere", "output": "x"},
        ],
    )
    assert "call_nowhere" in error.message
    rejected(
        "input",
        input=[{"type": "function_call_output", "call_id": "c", "output": "x"}, *_call("c")],
    )


def test_with_a_previous_response_the_orphan_check_waits_for_the_history() -> None:
    inp = parse(
        previous_response_id=RESP_ID, input=[{"type": "function_call_output", "call_id": "c", "output": "x"}]
    )
    assert inp.messages == [{"role": "tool", "tool_call_id": "c", "content": "x"}]
    assert inp.door_params["previous_response_id"] == RESP_ID
    assert DOOR.parse({"model": "m", "previous_response_id": RESP_ID}, {}).messages == []
    rejected("previous_response_id", input="Hi", previous_response_id="")


# -- the Agents SDK's second turn ------------------------------------------------------------------------


def test_the_agents_sdk_replay_of_our_own_output_parses_back_to_the_same_turn() -> None:
    first = completion(
        content="Let me look.",
        tool_calls=[tool_call("toolu_01ABC", "get_weather", '{"city":"Paris"}')],
        finish_reason="tool_calls",
    )
    response = sdk_client(json_handler(DOOR.render(first))).responses.create(model="m", input="Weather?")
    # What the Agents SDK sends back: each output item as model_dump(exclude_unset=True), then the results.
    replay = [item.model_dump(exclude_unset=True) for item in response.output]
    assert replay[0]["type"] == "message" and replay[1]["type"] == "function_call"
    second_input = [
        {"role": "user", "content": "Weather?"},
        *replay,
        {"type": "function_call_output", "call_id": response.output[1].call_id, "output": "18C"},
    ]
    inp = DOOR.parse({"model": "m", "input": second_input, "include": [], "tools": [WEATHER_TOOL]}, {})
    assert inp.messages == [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [tool_call("toolu_01ABC", "get_weather", '{"city":"Paris"}')],
        },
        {"role": "tool", "tool_call_id": "toolu_01ABC", "content": "18C"},
    ]


# -- continue_from ---------------------------------------------------------------------------------------


def test_continue_from_puts_the_history_after_the_instructions_and_before_the_new_input() -> None:
    inp = DOOR.parse(
        {
            "model": "gpt-4o-mini",
            "instructions": "Be brief.",
            "previous_response_id": RESP_ID,
            "input": [{"type": "function_call_output", "call_id": "call_1", "output": "18C"}],
            "store": True,
        },
        {},
    )
    previous_messages = [{"role": "user", "content": "Weather in Paris?"}]
    previous_output = {
        "role": "assistant",
        "content": None,
        "tool_calls": [tool_call("call_1", "get_weather", "{}")],
    }
    continued = continue_from(inp, previous_messages, previous_output)
    assert continued.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [tool_call("call_1", "get_weather", "{}")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    ]
    assert continued.store is True and continued.door_params["previous_response_id"] == RESP_ID
    assert continued.native is not None
    native = continued.native.body
    assert "previous_response_id" not in native and native["store"] is False
    assert native["instructions"] == "Be brief."
    assert native["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
    ]
    # The parsed input is untouched.
    assert inp.native is not None and "previous_response_id" in inp.native.body
    # What the next turn stores: the whole conversation so far, but never this turn's instructions.
    assert conversation_of(continued) == continued.messages[1:]
    assert conversation_of(parse(input="Hi")) == [{"role": "user", "content": "Hi"}]


def test_continue_from_carries_text_images_and_tool_results_into_native_items() -> None:
    inp = parse(previous_response_id=RESP_ID, input="And now?")
    previous_messages = [
        {"role": "developer", "content": "Rules."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look"},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
            ],
        },
        {"role": "assistant", "content": "Looking.", "tool_calls": [tool_call("call_9", "zoom", "{}")]},
        {"role": "tool", "tool_call_id": "call_9", "content": [{"type": "text", "text": "zoomed"}]},
    ]
    continued = continue_from(inp, previous_messages, {"role": "assistant", "content": "A cat."})
    assert [m["role"] for m in continued.messages] == [
        "developer",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert continued.native is not None
    assert continued.native.body["input"] == [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Rules."}]},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Look"},
                {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "low"},
            ],
        },
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Looking."}]},
        {"type": "function_call", "call_id": "call_9", "name": "zoom", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "call_9",
            "output": [{"type": "input_text", "text": "zoomed"}],
        },
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "A cat."}]},
        {"role": "user", "content": "And now?"},
    ]


def test_continue_from_refuses_an_output_for_a_call_the_history_does_not_have() -> None:
    inp = parse(
        previous_response_id=RESP_ID,
        input=[{"type": "function_call_output", "call_id": "call_x", "output": "1"}],
    )
    with pytest.raises(InvalidRequest) as caught:
        continue_from(inp, [{"role": "user", "content": "Hi"}], {"role": "assistant", "content": "Hello"})
    assert caught.value.param == "input" and "call_x" in caught.value.message


def test_continue_from_matches_the_call_ids_render_showed_for_long_stored_ids() -> None:
    long_id = "toolu_" + "y" * 50
    shown = DOOR.render(
        completion(content=None, tool_calls=[tool_call(long_id, "f", "{}")], finish_reason="tool_calls")
    )
    call_id = shown["output"][0]["call_id"]
    assert len(call_id) <= 40
    inp = parse(
        previous_response_id=RESP_ID,
        input=[{"type": "function_call_output", "call_id": call_id, "output": "1"}],
    )
    stored_answer = {"role": "assistant", "content": None, "tool_calls": [tool_call(long_id, "f", "{}")]}
    continued = continue_from(inp, [{"role": "user", "content": "Go"}], stored_answer)
    assert continued.messages[1]["tool_calls"][0]["id"] == call_id


# -- render ------------------------------------------------------------------------------------------------


def test_response_ids_and_request_ids_invert_each_other() -> None:
    assert response_id(REQUEST_ID) == RESP_ID
    assert request_id_of(RESP_ID) == REQUEST_ID
    assert request_id_of(response_id("req_abc_tag")) == "req_abc_tag"
    assert request_id_of("resp_") is None and request_id_of("chatcmpl-1") is None


def test_a_text_answer_renders_every_required_field_with_openai_defaults() -> None:
    body = DOOR.render(completion())
    assert body["id"] == RESP_ID and body["object"] == "response"
    assert (
        body["created_at"] == int(CREATED.timestamp())
        and body["completed_at"] == int(CREATED.timestamp()) + 1
    )
    assert body["status"] == "completed" and body["error"] is None and body["incomplete_details"] is None
    assert body["model"] == "claude-sonnet-4-5-20250929"
    assert body["output"] == [
        {
            "id": "msg_0123456789abcdef01234567",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello there", "annotations": []}],
        }
    ]
    defaults = {
        "instructions": None,
        "max_output_tokens": None,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "user": None,
        "metadata": {},
    }
    assert {key: body[key] for key in defaults} == defaults
    assert body["usage"] == {
        "input_tokens": 20,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 3},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 25,
    }
    assert body["router"] == {
        "request_id": REQUEST_ID,
        "model": "claude-sonnet-4-5-20250929",
        "provider": "anthropic",
        "cost_usd": Decimal("0.00000825"),
        "cached": False,
        "attempts": [{"model": "claude-sonnet-4-5-20250929", "provider": "anthropic", "status": "success"}],
    }
    assert b'"cost_usd":0.00000825' in dumps(body)


def test_the_request_settings_are_echoed() -> None:
    inp = parse(
        instructions="Be brief.",
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
        temperature=0.3,
        top_p=0.9,
        max_output_tokens=100,
        metadata={"k": "v"},
        reasoning={"effort": "low"},
        text={"format": {"type": "json_object"}, "verbosity": "low"},
        truncation="auto",
        store=False,
        user="u",
        previous_response_id=RESP_ID,
    )
    body = DOOR.render(completion(door_params=inp.door_params))
    assert body["instructions"] == "Be brief." and body["tools"] == [WEATHER_TOOL]
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert (body["parallel_tool_calls"], body["temperature"], body["top_p"]) == (False, 0.3, 0.9)
    assert body["max_output_tokens"] == 100 and body["metadata"] == {"k": "v"}
    assert body["reasoning"] == {"effort": "low", "summary": None}
    assert body["text"] == {"format": {"type": "json_object"}, "verbosity": "low"}
    assert (body["truncation"], body["store"], body["user"]) == ("auto", False, "u")
    assert body["previous_response_id"] == RESP_ID


def test_tool_calls_render_as_function_call_items_after_the_message() -> None:
    body = DOOR.render(
        completion(
            content="Checking.",
            tool_calls=[tool_call("call_A", "get_weather", '{"city":"Paris"}'), tool_call("", "now", "{}")],
            finish_reason="tool_calls",
        )
    )
    message, first, second = body["output"]
    assert message["type"] == "message" and body["status"] == "completed"
    assert first == {
        "id": "fc_call_A",
        "type": "function_call",
        "status": "completed",
        "arguments": '{"city":"Paris"}',
        "call_id": "call_A",
        "name": "get_weather",
    }
    # A missing id is minted, stably: the same completion renders the same id every time.
    assert second["call_id"].startswith("call_") and len(second["call_id"]) == 29
    assert (
        second["call_id"]
        == DOOR.render(completion(tool_calls=[{}, tool_call("", "now", "{}")]))["output"][2]["call_id"]
    )
    assert second["id"] == "fc_" + second["call_id"]


@pytest.mark.parametrize(
    ("finish_reason", "status", "details"),
    [
        ("stop", "completed", None),
        ("tool_calls", "completed", None),
        ("length", "incomplete", {"reason": "max_output_tokens"}),
        ("content_filter", "incomplete", {"reason": "content_filter"}),
        ("pause_turn", "completed", None),
        ("", "incomplete", {"reason": None}),
    ],
)
def test_the_status_follows_the_finish_reason(finish_reason: str, status: str, details: Any) -> None:
    body = DOOR.render(completion(finish_reason=finish_reason))
    assert body["status"] == status and body["incomplete_details"] == details
    assert (body["completed_at"] is None) == (status != "completed")


def test_an_answer_without_text_has_only_its_calls() -> None:
    body = DOOR.render(completion(content=None, tool_calls=[tool_call("call_1", "f", "{}")]))
    assert [item["type"] for item in body["output"]] == ["function_call"]


def test_a_native_answer_is_openais_body_under_our_id_model_and_store() -> None:
    raw = {
        "id": "resp_vendor",
        "object": "response",
        "model": "gpt-4o-mini-2024-07-18",
        "status": "completed",
        "store": False,
        "output": [{"type": "reasoning", "id": "rs_1", "summary": []}],
        "usage": {"input_tokens": 1},
    }
    body = DOOR.render(
        completion(raw=raw, model="gpt-4o-mini", provider="openai", door_params={"store": True})
    )
    assert body["id"] == RESP_ID and body["model"] == "gpt-4o-mini" and body["store"] is True
    assert body["output"] == raw["output"] and body["router"]["provider"] == "openai"
    assert raw["id"] == "resp_vendor"


def test_the_sdk_reads_a_rendered_response_with_strict_validation() -> None:
    body = DOOR.render(
        completion(content="Hi!", tool_calls=[tool_call("call_1", "get_weather", '{"city":"Rome"}')])
    )
    response = sdk_client(json_handler(body)).responses.create(model="m", input="Hi")
    assert response.id == RESP_ID and response.output_text == "Hi!"
    assert response.output[1].type == "function_call" and response.output[1].call_id == "call_1"
    assert response.usage is not None and response.usage.input_tokens_details.cache_write_tokens == 3


def test_error_body_is_the_openai_envelope_with_its_status() -> None:
    status, body = DOOR.error_body(RateLimited("Slow down"))
    assert status == 429
    assert body == {
        "error": {
            "message": "Slow down",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


# -- streaming -----------------------------------------------------------------------------------------------


def stream_text(renderer: Any, pieces: list[str]) -> list[bytes]:
    chunks = renderer.start()
    for piece in pieces:
        chunks += renderer.delta(StreamDelta(content=piece))
    return chunks


def test_a_text_stream_is_the_reference_event_sequence() -> None:
    renderer = DOOR.stream_renderer(meta())
    chunks = stream_text(renderer, ["Hel", "lo"])
    chunks += renderer.delta(StreamDelta(finish_reason="stop"))
    chunks += renderer.delta(StreamDelta(usage=Usage(prompt_tokens=20, completion_tokens=2)))
    chunks += renderer.end(completion(content="Hello", usage=Usage(prompt_tokens=20, completion_tokens=2)))
    sent = events(chunks)
    assert [e["type"] for e in sent] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in sent] == list(range(len(sent)))
    created = sent[0]["response"]
    assert created["id"] == RESP_ID and created["status"] == "in_progress"
    assert created["output"] == [] and created["usage"] is None
    assert sent[2]["item"] == {
        "id": "msg_0123456789abcdef01234567",
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    assert sent[3]["part"] == {"type": "output_text", "text": "", "annotations": []}
    assert all(e["output_index"] == 0 and e["content_index"] == 0 for e in sent[3:8])
    assert sent[4]["delta"] == "Hel" and sent[4]["logprobs"] == []
    assert sent[6]["text"] == "Hello" and sent[7]["part"]["text"] == "Hello"
    assert sent[8]["item"]["status"] == "completed"
    final = sent[9]["response"]
    assert final["status"] == "completed" and final["output"] == [sent[8]["item"]]
    assert final["usage"]["total_tokens"] == 22 and final["router"]["cost_usd"] == 0.00000825


def tool_stream(renderer: Any) -> list[bytes]:
    chunks = stream_text(renderer, ["Let me check."])
    chunks += renderer.delta(
        StreamDelta(
            tool_calls=[
                {
                    "index": 0,
                    "id": "call_A",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        )
    )
    for piece in ['{"city":', '"Paris"}']:
        chunks += renderer.delta(StreamDelta(tool_calls=[{"index": 0, "function": {"arguments": piece}}]))
    chunks += renderer.delta(
        StreamDelta(
            tool_calls=[
                {
                    "index": 1,
                    "id": "call_B",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                }
            ]
        )
    )
    chunks += renderer.delta(StreamDelta(finish_reason="tool_calls"))
    return chunks


TWO_CALLS = completion(
    content="Let me check.",
    tool_calls=[
        tool_call("call_A", "get_weather", '{"city":"Paris"}'),
        tool_call("call_B", "get_weather", '{"city":"Rome"}'),
    ],
    finish_reason="tool_calls",
)


def test_a_stream_with_text_and_two_tool_calls() -> None:
    renderer = DOOR.stream_renderer(meta())
    sent = events([*tool_stream(renderer), *renderer.end(TWO_CALLS)])
    assert [(e["type"], e.get("output_index")) for e in sent] == [
        ("response.created", None),
        ("response.in_progress", None),
        ("response.output_item.added", 0),
        ("response.content_part.added", 0),
        ("response.output_text.delta", 0),
        ("response.output_text.done", 0),
        ("response.content_part.done", 0),
        ("response.output_item.done", 0),
        ("response.output_item.added", 1),
        ("response.function_call_arguments.delta", 1),
        ("response.function_call_arguments.delta", 1),
        ("response.function_call_arguments.done", 1),
        ("response.output_item.done", 1),
        ("response.output_item.added", 2),
        ("response.function_call_arguments.delta", 2),
        ("response.function_call_arguments.done", 2),
        ("response.output_item.done", 2),
        ("response.completed", None),
    ]
    assert [e["sequence_number"] for e in sent] == list(range(len(sent)))
    assert sent[8]["item"] == {
        "id": "fc_call_A",
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": "call_A",
        "name": "get_weather",
    }
    assert sent[9]["item_id"] == "fc_call_A" and sent[9]["delta"] == '{"city":'
    assert sent[11]["arguments"] == '{"city":"Paris"}' and sent[11]["name"] == "get_weather"
    final = sent[-1]["response"]
    assert [item["id"] for item in final["output"]] == [
        "msg_0123456789abcdef01234567",
        "fc_call_A",
        "fc_call_B",
    ]
    assert final["output"][2]["arguments"] == '{"city":"Rome"}'


def test_the_sdk_stream_helper_accumulates_our_events() -> None:
    renderer = DOOR.stream_renderer(meta())
    chunks = [*tool_stream(renderer), *renderer.end(TWO_CALLS)]
    client = sdk_client(sse_handler(chunks))
    tool = {
        "type": "function",
        "name": "get_weather",
        "parameters": WEATHER_TOOL["parameters"],
        "strict": True,
    }
    with client.responses.stream(model="m", input="Weather?", tools=[tool]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.id == RESP_ID and final.output_text == "Let me check."
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_A", "get_weather", '{"city":"Paris"}'),
        ("call_B", "get_weather", '{"city":"Rome"}'),
    ]
    assert calls[0].parsed_arguments == {"city": "Paris"}  # strict tools get their arguments parsed


def test_the_sdk_reads_a_raw_stream_with_strict_validation() -> None:
    renderer = DOOR.stream_renderer(meta())
    chunks = [*tool_stream(renderer), *renderer.end(TWO_CALLS)]
    stream = sdk_client(sse_handler(chunks)).responses.create(model="m", input="Hi", stream=True)
    received = list(stream)
    assert received[-1].type == "response.completed"
    assert received[-1].response.usage is not None


def test_a_cut_off_stream_ends_incomplete_which_the_sdk_does_not_call_final() -> None:
    renderer = DOOR.stream_renderer(meta())
    chunks = stream_text(renderer, ["Once upon"])
    chunks += renderer.end(completion(content="Once upon", finish_reason="length"))
    sent = events(chunks)
    assert sent[-1]["type"] == "response.incomplete"
    assert sent[-1]["response"]["status"] == "incomplete"
    assert sent[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    with (
        sdk_client(sse_handler(chunks)).responses.stream(model="m", input="Hi") as stream,
        pytest.raises(RuntimeError, match=r"response\.completed"),
    ):
        stream.get_final_response()


def test_a_result_without_deltas_is_streamed_whole() -> None:
    renderer = DOOR.stream_renderer(meta())
    chunks = renderer.start() + renderer.end(TWO_CALLS)
    sent = events(chunks)
    assert [e["type"] for e in sent].count("response.output_item.done") == 3
    with sdk_client(sse_handler(chunks)).responses.stream(model="m", input="Hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Let me check." and len(final.output) == 3


def test_a_failure_before_the_end_is_response_failed() -> None:
    renderer = DOOR.stream_renderer(meta())
    chunks = stream_text(renderer, ["Hal"])
    chunks += renderer.fail(UpstreamError("provider went away"))
    sent = events(chunks)
    failed = sent[-1]
    assert failed["type"] == "response.failed" and failed["sequence_number"] == len(sent) - 1
    assert failed["response"]["status"] == "failed" and failed["response"]["id"] == RESP_ID
    assert failed["response"]["error"] == {"code": "server_error", "message": "provider went away"}
    assert failed["response"]["output"] == []  # the half-written message never finished
    received = list(sdk_client(sse_handler(chunks)).responses.create(model="m", input="Hi", stream=True))
    assert received[-1].type == "response.failed"


def test_a_failure_after_the_terminal_event_is_an_error_event() -> None:
    renderer = DOOR.stream_renderer(meta())
    chunks = stream_text(renderer, ["Hi"]) + renderer.end(completion(content="Hi"))
    chunks += renderer.fail(UpstreamError("late", code="upstream_error"))
    last = events(chunks)[-1]
    assert (
        list(sdk_client(sse_handler(chunks)).responses.create(model="m", input="Hi", stream=True))[-1].type
        == "error"
    )
    assert last == {
        "type": "error",
        "sequence_number": len(chunks) - 1,
        "code": "upstream_error",
        "message": "late",
        "param": None,
    }


def native_event(payload: dict[str, Any]) -> bytes:
    return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n".encode()


def test_a_native_stream_passes_events_through_under_our_id_and_model() -> None:
    renderer = DOOR.stream_renderer(meta(native=True, model="gpt-4o-mini", door_params={"store": True}))
    vendor = {
        "id": "resp_vendor",
        "object": "response",
        "model": "gpt-4o-mini-2024-07-18",
        "store": False,
        "output": [],
    }
    created = native_event({"type": "response.created", "sequence_number": 0, "response": vendor})
    delta = native_event(
        {
            "type": "response.output_text.delta",
            "sequence_number": 1,
            "item_id": "msg_v",
            "delta": "Hi",
            "logprobs": [],
        }
    )
    completed = native_event(
        {"type": "response.completed", "sequence_number": 2, "response": {**vendor, "status": "completed"}}
    )
    assert renderer.start() == []
    out_created = renderer.delta(StreamDelta(raw=created))
    assert renderer.delta(StreamDelta(raw=delta)) == [delta]  # byte for byte
    assert renderer.delta(StreamDelta(content="ignored")) == []
    out_completed = renderer.delta(StreamDelta(raw=completed))
    for chunk in (*out_created, *out_completed):
        response = events([chunk])[0]["response"]
        assert (response["id"], response["model"], response["store"]) == (RESP_ID, "gpt-4o-mini", True)
    assert events(out_completed)[0]["response"]["status"] == "completed"
    assert renderer.end(completion(raw={"id": "resp_vendor"})) == []
    error = events(renderer.fail(UpstreamError("late")))[0]
    assert error["type"] == "error" and error["sequence_number"] == 3


def test_a_native_stream_that_breaks_midway_ends_in_response_failed() -> None:
    renderer = DOOR.stream_renderer(meta(native=True, model="gpt-4o-mini"))
    vendor = {"id": "resp_vendor", "object": "response", "model": "x", "output": []}
    renderer.delta(
        StreamDelta(raw=native_event({"type": "response.created", "sequence_number": 0, "response": vendor}))
    )
    failed = events(renderer.fail(RateLimited("Slow down")))[0]
    assert failed["type"] == "response.failed" and failed["sequence_number"] == 1
    assert failed["response"]["id"] == RESP_ID and failed["response"]["model"] == "gpt-4o-mini"
    assert failed["response"]["error"]["code"] == "rate_limit_exceeded"


def test_a_streamed_call_without_an_id_gets_the_call_id_render_would_give() -> None:
    renderer = DOOR.stream_renderer(meta())
    chunks = renderer.start()
    chunks += renderer.delta(
        StreamDelta(tool_calls=[{"index": 0, "function": {"name": "now", "arguments": "{}"}}])
    )
    answer = completion(content=None, tool_calls=[tool_call("", "now", "{}")], finish_reason="tool_calls")
    streamed = events([*chunks, *renderer.end(answer)])[-1]["response"]["output"]
    assert streamed == DOOR.render(answer)["output"]
