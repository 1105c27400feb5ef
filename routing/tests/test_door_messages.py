"""The /v1/messages door codec: Anthropic bodies to the canonical form and back, checked against the real SDK."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import anthropic
import httpx2
import pytest

from config.api_errors import (
    ApiError,
    AuthenticationFailed,
    BudgetExceeded,
    InternalError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from config.rendering import dumps
from providers.adapters.base import StreamDelta, Usage
from providers.pricing import Cost
from routing.doors.messages import MessagesDoor, count_tokens_input, models_list
from routing.pipeline.types import Completion, StreamMeta

door = MessagesDoor()
REQUEST_ID = "req_0123456789abcdef01234567"
LONG_TOOL = "mcp__company_knowledge_base__search_every_document_in_the_shared_drive_by_keyword"


def request(**fields: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hi"}],
        **fields,
    }


def completion(**fields: Any) -> Completion:
    values: dict[str, Any] = {
        "request_id": REQUEST_ID,
        "model": "gpt-4o-mini",
        "provider": "openai",
        "content": "Hello!",
        "tool_calls": None,
        "finish_reason": "stop",
        "usage": Usage(prompt_tokens=12, completion_tokens=3),
        "cost": Cost(
            input_cost=Decimal("0.0000018"), output_cost=Decimal("0.0000018"), total=Decimal("0.0000036")
        ),
        "estimated_cost": Decimal("0.00001"),
        "cached": False,
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "latency_ms": 120,
        "selection_mode": "manual",
        "models_considered": 1,
        "attempts": [{"model": "gpt-4o-mini", "provider": "openai", "status": "success", "latency_ms": 110}],
    }
    values.update(fields)
    return Completion(**values)


def meta(**fields: Any) -> StreamMeta:
    values: dict[str, Any] = {
        "request_id": REQUEST_ID,
        "model": "gpt-4o-mini",
        "provider": "openai",
        "created_at": datetime(2026, 1, 2, tzinfo=UTC),
        "prompt_tokens": 40,
        "native": False,
    }
    values.update(fields)
    return StreamMeta(**values)


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def parse_sse(chunks: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for raw in b"".join(chunks).split(b"\n\n"):
        if not raw:
            continue
        name_line, data_line = raw.split(b"\n")
        assert name_line.startswith(b"event: ") and data_line.startswith(b"data: ")
        name, data = name_line[len(b"event: ") :].decode(), json.loads(data_line[len(b"data: ") :])
        assert data["type"] == name
        events.append((name, data))
    return events


def sdk(handler: Callable[[httpx2.Request], httpx2.Response]) -> anthropic.Anthropic:
    """The official client, answered in process by our door's bytes."""
    transport = httpx2.MockTransport(handler)
    return anthropic.Anthropic(
        api_key="rk-test",
        base_url="http://gateway.test",
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
    )


def sdk_answering(status: int, content: bytes, content_type: str = "application/json") -> anthropic.Anthropic:
    return sdk(
        lambda _request: httpx2.Response(status, content=content, headers={"content-type": content_type})
    )


def bad_param(body: Any) -> str | None:
    with pytest.raises(InvalidRequest) as caught:
        door.parse(body, {})
    assert caught.value.status == 400 and caught.value.code == "invalid_value"
    assert caught.value.param and caught.value.param in caught.value.message
    return caught.value.param


# ---------------------------------------------------------------------------------------------------- parse


def test_a_plain_request_becomes_a_canonical_user_message_with_the_body_kept_for_claude():
    body = request()
    inp = door.parse(body, {})
    assert inp.messages == [{"role": "user", "content": "Hi"}]
    assert (inp.door, inp.model, inp.max_tokens, inp.stream, inp.include_usage) == (
        "messages",
        "gpt-4o-mini",
        256,
        False,
        False,
    )
    assert inp.native is not None and inp.native.provider == "anthropic"
    assert inp.native.body is body and inp.native.headers == {}
    assert inp.door_params == {"clamp_max_tokens": True}


def test_a_stream_asks_for_usage():
    inp = door.parse(request(stream=True), {})
    assert inp.stream and inp.include_usage


def test_the_anthropic_beta_header_is_forwarded_only_when_sent():
    beta = "claude-code-20250219,interleaved-thinking-2025-05-14"
    inp = door.parse(request(), {"Anthropic-Beta": beta, "anthropic-version": "2023-06-01"})
    assert inp.native is not None and inp.native.headers == {"anthropic-beta": beta}


def test_cache_control_and_the_client_request_id_headers_are_honoured():
    inp = door.parse(request(), {"Cache-Control": "no-store", "X-Client-Request-Id": "c" * 300})
    assert (inp.cache_read, inp.cache_write, inp.client_request_id) == (True, False, "c" * 200)
    inp = door.parse(request(), {"cache-control": "no-cache"})
    assert (inp.cache_read, inp.cache_write, inp.client_request_id) == (False, True, "")


def test_a_system_string_or_text_blocks_become_a_leading_system_message():
    assert door.parse(request(system="Be brief."), {}).messages[0] == {
        "role": "system",
        "content": "Be brief.",
    }
    blocks = [
        {"type": "text", "text": "One."},
        {"type": "text", "text": "Two.", "cache_control": {"type": "ephemeral"}},
    ]
    assert door.parse(request(system=blocks), {}).messages[0] == {"role": "system", "content": "One.\n\nTwo."}


def test_a_system_turn_inside_messages_stays_in_place():
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": [{"type": "text", "text": "Now answer in French."}]},
        {"role": "user", "content": "Hello"},
    ]
    assert [m["role"] for m in door.parse(request(messages=messages), {}).messages] == [
        "user",
        "system",
        "user",
    ]
    assert door.parse(request(messages=messages), {}).messages[1]["content"] == "Now answer in French."


def test_sampling_fields_map_to_their_canonical_names():
    inp = door.parse(
        request(
            temperature=0.2, top_p=0.9, top_k=40, stop_sequences=["END", "###"], metadata={"user_id": "u-1"}
        ),
        {},
    )
    assert (inp.temperature, inp.top_p, inp.stop, inp.user) == (0.2, 0.9, ["END", "###"], "u-1")
    assert inp.door_params["top_k"] == 40


def test_a_long_user_id_is_cut_to_the_chat_doors_bound():
    inp = door.parse(request(metadata={"user_id": "x" * 1000}), {})
    assert inp.user == "x" * 256


def test_unknown_top_level_fields_are_ignored():
    inp = door.parse(
        request(service_tier="auto", container="c-1", speed="fast", some_future_field={"a": 1}), {}
    )
    assert inp.messages == [{"role": "user", "content": "Hi"}]


def test_tools_become_function_tools():
    tools = [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": {"type": "object", "properties": {}},
        },
        {
            "name": "ping",
            "type": "custom",
            "input_schema": {"type": "object"},
            "cache_control": {"type": "ephemeral"},
        },
    ]
    inp = door.parse(request(tools=tools), {})
    assert inp.tools == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {}},
                "description": "Weather",
            },
        },
        {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}},
    ]


@pytest.mark.parametrize(
    ("choice", "canonical"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "ping"}, {"type": "function", "function": {"name": "ping"}}),
    ],
)
def test_each_tool_choice_maps_to_the_chat_choice(choice, canonical):
    tools = [{"name": "ping", "input_schema": {"type": "object"}}]
    assert door.parse(request(tools=tools, tool_choice=choice), {}).tool_choice == canonical


def test_disabling_parallel_tool_use_is_kept_for_the_adapter():
    tools = [{"name": "ping", "input_schema": {"type": "object"}}]
    inp = door.parse(
        request(tools=tools, tool_choice={"type": "auto", "disable_parallel_tool_use": True}), {}
    )
    assert inp.door_params["parallel_tool_calls"] is False


def test_a_tool_choice_without_tools_is_not_sent_to_chat_upstreams():
    assert door.parse(request(tool_choice={"type": "auto"}), {}).tool_choice is None


def test_server_tools_and_their_blocks_are_left_to_claude_and_named():
    tools = [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"name": "ping", "input_schema": {"type": "object"}},
    ]
    messages = [
        {"role": "user", "content": "News?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_1",
                    "name": "web_search",
                    "input": {"query": "news"},
                },
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                {"type": "text", "text": "Here is the news."},
            ],
        },
        {"role": "user", "content": "Thanks"},
    ]
    inp = door.parse(request(tools=tools, messages=messages), {})
    assert [t["function"]["name"] for t in inp.tools or []] == ["ping"]
    assert inp.messages[1] == {"role": "assistant", "content": "Here is the news."}
    assert inp.door_params["native_only"] == ["messages[1].content[0]", "messages[1].content[1]", "tools[0]"]


def test_a_tool_name_too_long_for_openai_is_shortened_and_mapped_back():
    tools = [{"name": LONG_TOOL, "input_schema": {"type": "object"}}]
    inp = door.parse(request(tools=tools, tool_choice={"type": "tool", "name": LONG_TOOL}), {})
    short = inp.tools[0]["function"]["name"] if inp.tools else ""
    assert len(short) == 64 and short.startswith(LONG_TOOL[:55])
    assert inp.tool_choice == {"type": "function", "function": {"name": short}}
    assert inp.door_params["tool_names"] == {short: LONG_TOOL}
    answer = completion(
        tool_calls=[tool_call("call_1", short, "{}")], finish_reason="tool_calls", door_params=inp.door_params
    )
    assert door.render(answer)["content"][1]["name"] == LONG_TOOL
    renderer = door.stream_renderer(meta(door_params=inp.door_params))
    chunks = renderer.delta(
        StreamDelta(tool_calls=[{"index": 0, "id": "call_1", "function": {"name": short}}])
    )
    assert parse_sse(chunks)[0][1]["content_block"]["name"] == LONG_TOOL


def test_images_documents_and_search_results_become_chat_parts():
    content = [
        {"type": "text", "text": "Look:"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Plain notes."}},
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "Inline."}]}},
        {
            "type": "search_result",
            "title": "Doc",
            "source": "https://d.example",
            "content": [{"type": "text", "text": "Hit."}],
        },
    ]
    inp = door.parse(request(messages=[{"role": "user", "content": content}]), {})
    assert inp.messages == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {
                    "type": "file",
                    "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBER"},
                },
                {"type": "text", "text": "Plain notes."},
                {"type": "text", "text": "Inline."},
                {"type": "text", "text": "Doc (https://d.example)\nHit."},
            ],
        }
    ]
    assert inp.uses_images()


def test_sources_only_anthropic_can_fetch_are_dropped_and_named():
    content = [
        {"type": "text", "text": "Read it"},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
        {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
    ]
    inp = door.parse(request(messages=[{"role": "user", "content": content}]), {})
    assert inp.messages == [{"role": "user", "content": [{"type": "text", "text": "Read it"}]}]
    assert inp.door_params["native_only"] == [
        "messages[0].content[1].source",
        "messages[0].content[2].source",
    ]


def test_tool_use_and_tool_result_become_tool_calls_and_tool_messages_before_the_rest_of_the_turn():
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Here you go."},
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18°C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_02",
                    "is_error": True,
                    "content": [
                        {"type": "text", "text": "clock"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AA"},
                        },
                    ],
                },
            ],
        },
    ]
    assert door.parse(request(messages=messages), {}).messages == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_01",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {"id": "toolu_02", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01", "content": "18°C"},
        {"role": "tool", "tool_call_id": "toolu_02", "content": "clock"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Here you go."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
            ],
        },
    ]


def test_an_assistant_turn_of_tool_calls_only_has_no_content():
    messages = [
        {"role": "user", "content": "Go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "go", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]},
    ]
    canonical = door.parse(request(messages=messages), {}).messages
    assert canonical[1]["content"] is None and canonical[2] == {
        "role": "tool",
        "tool_call_id": "t1",
        "content": "",
    }


def test_thinking_blocks_are_dropped_from_the_canonical_form():
    messages = [
        {"role": "user", "content": "2+2?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Simple.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "4"},
            ],
        },
        {"role": "user", "content": "And 3+3?"},
    ]
    assert door.parse(request(messages=messages), {}).messages[1] == {"role": "assistant", "content": "4"}


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 8000}, "high"),
        ({"type": "enabled", "budget_tokens": 4096}, "high"),
        ({"type": "enabled", "budget_tokens": 2048}, "medium"),
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 500}, "minimal"),
        ({"type": "disabled"}, "none"),
        ({"type": "adaptive"}, "medium"),
    ],
)
def test_thinking_becomes_a_reasoning_effort_for_other_vendors(thinking, effort):
    assert (
        door.parse(request(max_tokens=16000, thinking=thinking), {}).door_params["reasoning_effort"] == effort
    )


def test_adaptive_thinking_takes_the_effort_the_client_asked_for():
    inp = door.parse(request(thinking={"type": "adaptive"}, output_config={"effort": "low"}), {})
    assert inp.door_params["reasoning_effort"] == "low"


def test_a_structured_output_format_becomes_a_json_schema_response_format():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    inp = door.parse(request(output_config={"format": {"type": "json_schema", "schema": schema}}), {})
    assert inp.response_format == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    assert inp.uses_json()


def claude_code_body() -> dict[str, Any]:
    """The shape Claude Code sends: cached system blocks, tools, thinking, a session user id, tool history."""
    cached = {"type": "ephemeral"}
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {
                "type": "text",
                "text": "You are Claude Code, Anthropic's official CLI for Claude.",
                "cache_control": cached,
            },
            {"type": "text", "text": "You are an interactive CLI tool.", "cache_control": cached},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>context</system-reminder>"},
                    {"type": "text", "text": "List the files", "cache_control": cached},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "I should run ls.", "signature": "EqQBCkYIBxgCKkB"},
                    {"type": "text", "text": "I'll list them."},
                    {"type": "tool_use", "id": "toolu_01ABC", "name": "Bash", "input": {"command": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01ABC",
                        "content": "a.py\nb.py",
                        "cache_control": cached,
                    }
                ],
            },
        ],
        "tools": [
            {
                "name": "Bash",
                "description": "Run a shell command",
                "input_schema": {
                    "type": "object",
                    "properties": {"command": {"type": "string"}},
                    "required": ["command"],
                    "additionalProperties": False,
                    "$schema": "http://json-schema.org/draft-07/schema#",
                },
            }
        ],
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "metadata": {"user_id": json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": "s-1"})},
        "temperature": 1,
    }


def test_a_claude_code_request_parses_into_canonical_messages_and_keeps_its_native_body_untouched():
    body = claude_code_body()
    before = copy.deepcopy(body)
    beta = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"
    inp = door.parse(body, {"anthropic-beta": beta, "x-claude-code-session-id": "s-1"})
    assert inp.messages == [
        {
            "role": "system",
            "content": "You are Claude Code, Anthropic's official CLI for Claude.\n\nYou are an interactive CLI tool.",
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>context</system-reminder>"},
                {"type": "text", "text": "List the files"},
            ],
        },
        {
            "role": "assistant",
            "content": "I'll list them.",
            "tool_calls": [
                {
                    "id": "toolu_01ABC",
                    "type": "function",
                    "function": {"name": "Bash", "arguments": '{"command": "ls"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01ABC", "content": "a.py\nb.py"},
    ]
    assert inp.tools == [
        {
            "type": "function",
            "function": {
                "name": "Bash",
                "parameters": body["tools"][0]["input_schema"],
                "description": "Run a shell command",
            },
        }
    ]
    assert (inp.stream, inp.include_usage, inp.max_tokens, inp.temperature) == (True, True, 32000, 1.0)
    assert inp.user == body["metadata"]["user_id"]
    assert inp.door_params == {"clamp_max_tokens": True, "reasoning_effort": "high"}
    assert (
        inp.native is not None and inp.native.body is body and inp.native.headers == {"anthropic-beta": beta}
    )
    assert body == before


# ------------------------------------------------------------------------------------------------ bad input


def without(key: str) -> dict[str, Any]:
    body = request()
    del body[key]
    return body


def first_message(content: Any, role: str = "user") -> dict[str, Any]:
    return request(messages=[{"role": role, "content": content}])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (without("max_tokens"), "max_tokens"),
        (request(max_tokens=0), "max_tokens"),
        (request(max_tokens="100"), "max_tokens"),
        (request(max_tokens=True), "max_tokens"),
        (without("messages"), "messages"),
        (request(messages=[]), "messages"),
        (request(messages="Hi"), "messages"),
        (without("model"), "model"),
        (request(model=7), "model"),
        (request(messages=["Hi"]), "messages[0]"),
        (request(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
        (request(messages=[{"role": "user"}]), "messages[0].content"),
        (first_message(5), "messages[0].content"),
        (first_message([{"type": "video", "url": "x"}]), "messages[0].content[0].type"),
        (first_message([{"text": "no type"}]), "messages[0].content[0].type"),
        (
            first_message([{"type": "tool_use", "id": "t", "name": "n", "input": {}}]),
            "messages[0].content[0].type",
        ),
        (
            first_message([{"type": "tool_result", "tool_use_id": "t"}], role="assistant"),
            "messages[0].content[0].type",
        ),
        (first_message([{"type": "text"}]), "messages[0].content[0].text"),
        (first_message([{"type": "image", "source": {"type": "ftp"}}]), "messages[0].content[0].source.type"),
        (
            first_message([{"type": "image", "source": {"type": "base64", "data": "A"}}]),
            "messages[0].content[0].source.media_type",
        ),
        (first_message([{"type": "tool_result"}]), "messages[0].content[0].tool_use_id"),
        (
            first_message([{"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}]),
            "messages[0].content[0].is_error",
        ),
        (
            first_message([{"type": "tool_use", "id": "t", "name": "n", "input": "{}"}], role="assistant"),
            "messages[0].content[0].input",
        ),
        (request(system=5), "system"),
        (request(system=[{"type": "image"}]), "system[0].type"),
        (request(temperature=2), "temperature"),
        (request(temperature="0.5"), "temperature"),
        (request(top_p=1.5), "top_p"),
        (request(top_k=-1), "top_k"),
        (request(stop_sequences="END"), "stop_sequences"),
        (request(stop_sequences=[1]), "stop_sequences[0]"),
        (request(stream="yes"), "stream"),
        (request(tools={"name": "x"}), "tools"),
        (request(tools=[{"input_schema": {"type": "object"}}]), "tools[0].name"),
        (request(tools=[{"name": "x"}]), "tools[0].input_schema"),
        (request(tools=[{"name": "x", "input_schema": "object"}]), "tools[0].input_schema"),
        (request(tools=[{"name": "x", "input_schema": {"type": "string"}}]), "tools[0].input_schema.type"),
        (
            request(tools=[{"name": "x", "input_schema": {"type": "object"}, "description": 3}]),
            "tools[0].description",
        ),
        (request(tool_choice="auto"), "tool_choice"),
        (request(tool_choice={"type": "sometimes"}), "tool_choice.type"),
        (request(tool_choice={"type": "tool"}), "tool_choice.name"),
        (
            request(tool_choice={"type": "auto", "disable_parallel_tool_use": "true"}),
            "tool_choice.disable_parallel_tool_use",
        ),
        (request(thinking={"type": "enabled"}), "thinking.budget_tokens"),
        (request(thinking={"type": "maybe"}), "thinking.type"),
        (request(metadata={"user_id": 5}), "metadata.user_id"),
        (request(metadata="u-1"), "metadata"),
        (request(output_config={"format": {"type": "xml"}}), "output_config.format.type"),
        ([1, 2], "body"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(body, param):
    assert bad_param(body) == param


# -------------------------------------------------------------------------------------------- count_tokens


def test_a_count_tokens_body_needs_no_max_tokens():
    body = {"model": "gpt-4o", "system": "Be brief.", "messages": [{"role": "user", "content": "Hi"}]}
    body["tools"] = [{"name": "ping", "input_schema": {"type": "object"}}]
    counted = count_tokens_input(body)
    assert counted.model == "gpt-4o"
    assert counted.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert counted.tools == [
        {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}}
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-4o"}, "messages"),
        ({"messages": [{"role": "user", "content": "Hi"}]}, "model"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "thinking": {"type": "x"}},
            "thinking.type",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "tool_choice": {"type": "x"}},
            "tool_choice.type",
        ),
    ],
)
def test_a_bad_count_tokens_body_is_a_400_naming_the_field(body, param):
    with pytest.raises(InvalidRequest) as caught:
        count_tokens_input(body)
    assert caught.value.param == param


# --------------------------------------------------------------------------------------------------- render


def test_a_text_answer_renders_as_an_anthropic_message_with_router_facts():
    body = door.render(completion())
    assert body == {
        "id": "msg_0123456789abcdef01234567",
        "type": "message",
        "role": "assistant",
        "model": "gpt-4o-mini",
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 3,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
        "router": {
            "request_id": REQUEST_ID,
            "model": "gpt-4o-mini",
            "provider": "openai",
            "cost_usd": Decimal("0.0000036"),
            "cached": False,
            "attempts": [
                {"model": "gpt-4o-mini", "provider": "openai", "status": "success", "latency_ms": 110}
            ],
        },
    }
    assert isinstance(body["router"]["cost_usd"], Decimal)
    assert b'"cost_usd":0.0000036' in dumps(body)


def test_tool_calls_render_as_tool_use_blocks_after_the_text():
    calls = [
        tool_call("call_abc-1", "get_weather", '{"city": "Paris"}'),
        tool_call("call.with/odd:chars", "get_time", "{not json"),
        tool_call("", "get_list", "[1, 2]"),
    ]
    body = door.render(completion(content="Checking.", tool_calls=calls, finish_reason="tool_calls"))
    text, weather, time, listing = body["content"]
    assert text == {"type": "text", "text": "Checking."}
    assert weather == {
        "type": "tool_use",
        "id": "call_abc-1",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert time["id"].startswith("toolu_") and time["input"] == {}
    assert listing["id"].startswith("toolu_") and listing["id"] != time["id"] and listing["input"] == {}
    assert body["stop_reason"] == "tool_use"


def test_an_answer_without_text_has_no_text_block():
    body = door.render(
        completion(content=None, tool_calls=[tool_call("c1", "go", "{}")], finish_reason="tool_calls")
    )
    assert [block["type"] for block in body["content"]] == ["tool_use"]
    assert door.render(completion(content=""))["content"] == []


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        ("something_new", "end_turn"),
    ],
)
def test_each_finish_reason_maps_to_a_stop_reason(finish_reason, stop_reason):
    assert door.render(completion(finish_reason=finish_reason))["stop_reason"] == stop_reason


def test_input_tokens_exclude_cache_reads_and_writes():
    usage = Usage(prompt_tokens=100, completion_tokens=7, cached_tokens=30, cache_write_tokens=20)
    assert door.render(completion(usage=usage))["usage"] == {
        "input_tokens": 50,
        "output_tokens": 7,
        "cache_read_input_tokens": 30,
        "cache_creation_input_tokens": 20,
    }
    odd = Usage(prompt_tokens=10, completion_tokens=1, cached_tokens=30)
    assert door.render(completion(usage=odd))["usage"]["input_tokens"] == 0


def test_a_native_claude_answer_passes_through_under_the_catalog_id():
    raw = {
        "id": "msg_01XYZ",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "Hm.", "signature": "sig"},
            {"type": "text", "text": "Hi"},
        ],
        "stop_reason": "pause_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 5, "cache_read_input_tokens": 100},
    }
    before = copy.deepcopy(raw)
    body = door.render(completion(model="claude-sonnet-4-5", provider="anthropic", raw=raw))
    assert body == {**before, "model": "claude-sonnet-4-5", "router": body["router"]}
    assert body["router"]["provider"] == "anthropic" and raw == before


def test_the_sdk_reads_a_rendered_body():
    calls = [tool_call("call_1", "get_weather", '{"city": "Paris"}')]
    usage = Usage(prompt_tokens=120, completion_tokens=18, cached_tokens=64)
    body = door.render(
        completion(content="Checking.", tool_calls=calls, finish_reason="tool_calls", usage=usage)
    )
    client = sdk_answering(200, dumps(body))
    message = client.messages.create(
        model="gpt-4o-mini", max_tokens=256, messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.id == "msg_0123456789abcdef01234567" and message.stop_reason == "tool_use"
    assert message.content[0].type == "text" and message.content[0].text == "Checking."
    assert message.content[1].type == "tool_use" and message.content[1].input == {"city": "Paris"}
    assert (
        message.usage.input_tokens,
        message.usage.cache_read_input_tokens,
        message.usage.output_tokens,
    ) == (56, 64, 18)


# --------------------------------------------------------------------------------------------------- stream


def run_stream(renderer: Any, deltas: list[StreamDelta], answer: Completion) -> list[bytes]:
    chunks = renderer.start()
    for delta in deltas:
        chunks += renderer.delta(delta)
    return chunks + renderer.end(answer)


def text_stream() -> list[bytes]:
    deltas = [StreamDelta(content="Hel"), StreamDelta(content="lo!"), StreamDelta(finish_reason="stop")]
    usage = Usage(prompt_tokens=52, completion_tokens=3, cached_tokens=10)
    return run_stream(door.stream_renderer(meta()), deltas, completion(usage=usage))


def tool_stream() -> list[bytes]:
    deltas = [
        StreamDelta(content="Checking."),
        StreamDelta(
            tool_calls=[
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        ),
        StreamDelta(tool_calls=[{"index": 0, "function": {"arguments": '{"city": '}}]),
        StreamDelta(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}]),
        StreamDelta(
            tool_calls=[{"index": 1, "id": "call_2", "function": {"name": "get_time", "arguments": "{}"}}]
        ),
        StreamDelta(finish_reason="tool_calls"),
        StreamDelta(usage=Usage(prompt_tokens=120, completion_tokens=18, cached_tokens=64)),
    ]
    calls = [tool_call("call_1", "get_weather", '{"city": "Paris"}'), tool_call("call_2", "get_time", "{}")]
    answer = completion(
        content="Checking.",
        tool_calls=calls,
        finish_reason="tool_calls",
        usage=Usage(prompt_tokens=120, completion_tokens=18, cached_tokens=64),
    )
    return run_stream(door.stream_renderer(meta()), deltas, answer)


def test_a_text_answer_streams_in_anthropics_event_order():
    events = parse_sse(text_stream())
    assert [(name, data.get("index")) for name, data in events] == [
        ("message_start", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("message_delta", None),
        ("message_stop", None),
    ]
    start = events[0][1]["message"]
    assert (
        start["id"] == "msg_0123456789abcdef01234567"
        and start["content"] == []
        and start["model"] == "gpt-4o-mini"
    )
    assert start["usage"] == {"input_tokens": 40, "output_tokens": 0}
    assert events[1][1]["content_block"] == {"type": "text", "text": ""}
    assert [data["delta"] for _, data in events[2:4]] == [
        {"type": "text_delta", "text": "Hel"},
        {"type": "text_delta", "text": "lo!"},
    ]
    final = events[5][1]
    assert final["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert final["usage"] == {
        "input_tokens": 42,
        "output_tokens": 3,
        "cache_read_input_tokens": 10,
        "cache_creation_input_tokens": 0,
    }
    assert final["router"]["cost_usd"] == 0.0000036 and final["router"]["request_id"] == REQUEST_ID


def test_text_then_tool_calls_stream_one_block_at_a_time_with_rising_indices():
    events = parse_sse(tool_stream())
    assert [(name, data.get("index")) for name, data in events] == [
        ("message_start", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert events[4][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "get_weather",
        "input": {},
    }
    assert "".join(data["delta"]["partial_json"] for _, data in events[5:7]) == '{"city": "Paris"}'
    assert events[8][1]["content_block"]["name"] == "get_time"
    assert events[11][1]["delta"]["stop_reason"] == "tool_use"


def test_the_sdk_accumulates_a_streamed_text_answer():
    client = sdk_answering(200, b"".join(text_stream()), "text/event-stream")
    with client.messages.stream(
        model="gpt-4o-mini", max_tokens=256, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        message = stream.get_final_message()
    assert message.content[0].type == "text" and message.content[0].text == "Hello!"
    assert message.stop_reason == "end_turn"
    # message_delta's real counts replace message_start's estimate.
    assert (
        message.usage.input_tokens,
        message.usage.output_tokens,
        message.usage.cache_read_input_tokens,
    ) == (42, 3, 10)


def test_the_sdk_accumulates_a_streamed_tool_answer():
    client = sdk_answering(200, b"".join(tool_stream()), "text/event-stream")
    with client.messages.stream(
        model="gpt-4o-mini", max_tokens=256, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        message = stream.get_final_message()
    text, weather, time = message.content
    assert text.type == "text" and text.text == "Checking."
    assert weather.type == "tool_use" and weather.id == "call_1" and weather.input == {"city": "Paris"}
    assert time.type == "tool_use" and time.name == "get_time" and time.input == {}
    assert message.stop_reason == "tool_use" and message.usage.input_tokens == 56


def test_an_empty_answer_streams_start_delta_and_stop():
    events = parse_sse(run_stream(door.stream_renderer(meta()), [], completion(content=None)))
    assert [name for name, _ in events] == ["message_start", "message_delta", "message_stop"]


def test_text_after_a_tool_call_opens_a_new_block():
    renderer = door.stream_renderer(meta())
    chunks = renderer.delta(
        StreamDelta(tool_calls=[{"index": 0, "id": "c1", "function": {"name": "go", "arguments": "{}"}}])
    )
    chunks += renderer.delta(StreamDelta(content="Done."))
    events = parse_sse(chunks)
    assert [(name, data["index"]) for name, data in events] == [
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
    ]


def test_a_native_stream_passes_claudes_own_events_through():
    renderer = door.stream_renderer(meta(native=True, model="claude-sonnet-4-5", provider="anthropic"))
    raw = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n'
    assert renderer.start() == []
    assert renderer.delta(StreamDelta(content="Hi", raw=raw)) == [raw]
    assert renderer.delta(StreamDelta(usage=Usage(prompt_tokens=1))) == []
    assert renderer.end(completion(model="claude-sonnet-4-5", provider="anthropic")) == []


def test_a_stream_that_breaks_ends_in_an_error_event_the_sdk_raises():
    renderer = door.stream_renderer(meta())
    failure = renderer.fail(UpstreamError("The stream broke off: reset", code="stream_interrupted"))
    assert parse_sse(failure) == [
        ("error", {"type": "error", "error": {"type": "api_error", "message": "The stream broke off: reset"}})
    ]
    chunks = renderer.start() + renderer.delta(StreamDelta(content="Hel")) + failure
    client = sdk_answering(200, b"".join(chunks), "text/event-stream")
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "Hi"}]
        ) as stream,
    ):
        stream.get_final_message()
    assert caught.value.type == "api_error"


def test_an_overloaded_failure_mid_stream_says_overloaded():
    attempts = [{"model": "m", "provider": "openai", "status": "error", "latency_ms": 5, "status_code": 503}]
    failure = door.stream_renderer(meta()).fail(
        UpstreamError("All 1 attempt(s) failed", extra={"attempts": attempts})
    )
    assert parse_sse(failure)[0][1]["error"]["type"] == "overloaded_error"


# --------------------------------------------------------------------------------------------------- errors


def attempts_ending(status_code: int | None) -> dict[str, Any]:
    return {
        "attempts": [
            {
                "model": "m",
                "provider": "openai",
                "status": "error",
                "latency_ms": 5,
                "status_code": status_code,
            }
        ]
    }


@pytest.mark.parametrize(
    ("error", "status", "kind", "sdk_class"),
    [
        (
            InvalidRequest("messages: must not be empty", param="messages"),
            400,
            "invalid_request_error",
            anthropic.BadRequestError,
        ),
        (AuthenticationFailed("Invalid API key"), 401, "authentication_error", anthropic.AuthenticationError),
        (
            ApiError("Not allowed", status=403, code="permission_denied"),
            403,
            "permission_error",
            anthropic.PermissionDeniedError,
        ),
        (NotFound("No such endpoint"), 404, "not_found_error", anthropic.NotFoundError),
        (
            InvalidRequest("Model 'claude-x' not found or inactive", param="model", code="model_not_found"),
            404,
            "not_found_error",
            anthropic.NotFoundError,
        ),
        (
            ApiError("Use POST", status=405, code="method_not_allowed"),
            405,
            "invalid_request_error",
            anthropic.APIStatusError,
        ),
        (
            PayloadTooLarge("Request body is larger than 10 bytes"),
            413,
            "request_too_large",
            anthropic.ContentTooLargeError,
        ),
        (RateLimited("Slow down"), 429, "rate_limit_error", anthropic.RateLimitError),
        (InternalError("Internal server error"), 500, "api_error", anthropic.InternalServerError),
        (
            UpstreamError("All 3 attempt(s) failed", extra=attempts_ending(529)),
            529,
            "overloaded_error",
            anthropic.OverloadedError,
        ),
        (
            UpstreamError("All 2 attempt(s) failed", extra=attempts_ending(429)),
            529,
            "overloaded_error",
            anthropic.OverloadedError,
        ),
        (
            UpstreamError("All 1 attempt(s) failed", extra=attempts_ending(None)),
            529,
            "overloaded_error",
            anthropic.OverloadedError,
        ),
        (
            UpstreamError("All 1 attempt(s) failed", extra=attempts_ending(402)),
            502,
            "api_error",
            anthropic.InternalServerError,
        ),
        (
            UpstreamError("Bad credentials", code="upstream_auth_failed"),
            502,
            "api_error",
            anthropic.InternalServerError,
        ),
        (ServiceUnavailable("The database is unavailable"), 503, "api_error", anthropic.InternalServerError),
        (
            UpstreamTimeout("No answer in time", extra=attempts_ending(None)),
            504,
            "timeout_error",
            anthropic.InternalServerError,
        ),
    ],
)
def test_each_error_gets_anthropics_envelope_and_the_status_that_picks_the_sdk_class(
    error, status, kind, sdk_class
):
    got_status, body = door.error_body(error)
    assert got_status == status
    assert body["type"] == "error" and body["request_id"] is None
    assert body["error"]["type"] == kind and body["error"]["message"] == error.message
    for key, value in error.extra.items():
        assert body["error"][key] == value
    client = sdk_answering(got_status, dumps(body))
    with pytest.raises(sdk_class) as caught:
        client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.status_code == status and caught.value.type == kind


def test_a_budget_refusal_is_a_402_billing_error_with_the_window_that_refused():
    extra = {
        "reason": "limit_would_be_exceeded",
        "scope": "user",
        "period": "monthly",
        "remaining_budget_usd": Decimal("0.0001"),
        "estimated_cost_usd": Decimal("0.0025"),
    }
    status, body = door.error_body(BudgetExceeded("Budget exceeded", extra=extra))
    assert status == 402
    assert body["error"] == {"type": "billing_error", "message": "Budget exceeded", **extra}
    assert b'"estimated_cost_usd":0.0025' in dumps(body)
    client = sdk_answering(status, dumps(body))
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.status_code == 402 and caught.value.type == "billing_error"


def test_a_prompt_over_the_context_window_is_anthropics_prompt_too_long_400():
    error = PayloadTooLarge(
        "4000000 tokens exceed every model's context", param="messages", code="context_length_exceeded"
    )
    status, body = door.error_body(error)
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("prompt is too long")


# --------------------------------------------------------------------------------------------------- models


def test_the_models_page_has_anthropics_shape_and_the_sdk_reads_it():
    models = [
        {
            "id": "claude-sonnet-4-5",
            "display_name": "Claude Sonnet 4.5",
            "created_at": datetime(2025, 9, 29, tzinfo=UTC),
            "context_window": 200000,
            "max_output_tokens": 64000,
        },
        {
            "id": "gpt-4o-mini",
            "display_name": "",
            "created_at": datetime(2024, 7, 18),
            "context_window": 128000,
            "max_output_tokens": None,
        },
    ]
    page = models_list(models)
    assert page == {
        "data": [
            {
                "type": "model",
                "id": "claude-sonnet-4-5",
                "display_name": "Claude Sonnet 4.5",
                "created_at": "2025-09-29T00:00:00Z",
                "max_input_tokens": 200000,
                "max_tokens": 64000,
            },
            {
                "type": "model",
                "id": "gpt-4o-mini",
                "display_name": "gpt-4o-mini",
                "created_at": "2024-07-18T00:00:00Z",
                "max_input_tokens": 128000,
            },
        ],
        "has_more": False,
        "first_id": "claude-sonnet-4-5",
        "last_id": "gpt-4o-mini",
    }
    listed = list(sdk_answering(200, dumps(page)).models.list())
    assert [(m.id, m.max_input_tokens, m.created_at.year) for m in listed] == [
        ("claude-sonnet-4-5", 200000, 2025),
        ("gpt-4o-mini", 128000, 2024),
    ]
    assert models_list([]) == {"data": [], "has_more": False, "first_id": None, "last_id": None}
