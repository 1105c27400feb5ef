"""Anthropic usage: cache reads, and cache writes split into 5-minute and 1-hour ones, in answers and streams."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import respx

from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.anthropic_usage import parse_usage
from providers.adapters.base import ChatRequest, ProviderConfig, StreamDelta, Usage
from providers.pricing import Rates, cost_of_usage

URL = "https://api.anthropic.com/v1/messages"
CONFIG = ProviderConfig(name="anthropic", base_url="https://api.anthropic.com", api_key="sk-ant-x")
adapter = AnthropicAdapter()
SONNET = Rates(
    input_per_1m=Decimal("3.00"),
    output_per_1m=Decimal("15.00"),
    cached_input_per_1m=Decimal("0.30"),
    cache_write_5m_per_1m=Decimal("3.75"),
    cache_write_1h_per_1m=Decimal("6.00"),
)
# 377 plain + 1000 read + 300 written (of which 200 with the 1-hour TTL), 65 out.
SPLIT_USAGE: dict[str, Any] = {
    "input_tokens": 377,
    "cache_read_input_tokens": 1000,
    "cache_creation_input_tokens": 300,
    "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
    "output_tokens": 65,
    "service_tier": "standard",
}
EXPECTED = Usage(
    prompt_tokens=1677,
    completion_tokens=65,
    cached_tokens=1000,
    cache_write_tokens=300,
    cache_write_1h_tokens=200,
)


def request(**overrides: Any) -> ChatRequest:
    return ChatRequest(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Hi"}], **overrides)


def message(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Hello."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in events)


def stream_body(start_usage: dict[str, Any], delta_usage: dict[str, Any]) -> bytes:
    start = {**message(start_usage), "content": [], "stop_reason": None}
    return sse(
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta_usage},
        {"type": "message_stop"},
    )


async def test_an_answer_reports_its_5_minute_and_1_hour_cache_writes(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(json=message(SPLIT_USAGE))

    result = await adapter.complete(CONFIG, request())

    assert result.usage == EXPECTED
    # 377 x 3 + 1000 x 0.30 + 100 x 3.75 + 200 x 6 per 1M, and 65 x 15 per 1M.
    cost = cost_of_usage(SONNET, result.usage)
    assert (cost.input_cost, cost.output_cost) == (Decimal("0.003006"), Decimal("0.000975"))


async def test_a_stream_reports_the_split_from_message_start_with_the_output_from_message_delta(
    respx_mock: respx.Router,
) -> None:
    body = stream_body({**SPLIT_USAGE, "output_tokens": 1}, {"output_tokens": 65})
    respx_mock.post(URL).respond(content=body, headers={"content-type": "text/event-stream"})

    deltas = [delta async for delta in adapter.stream(CONFIG, request(stream=True))]

    assert deltas[-1] == StreamDelta(usage=EXPECTED)


async def test_a_stream_whose_message_delta_repeats_the_cache_fields_keeps_the_newest(
    respx_mock: respx.Router,
) -> None:
    body = stream_body({**SPLIT_USAGE, "output_tokens": 1}, SPLIT_USAGE)
    respx_mock.post(URL).respond(content=body, headers={"content-type": "text/event-stream"})

    deltas = [delta async for delta in adapter.stream(CONFIG, request(stream=True))]

    assert deltas[-1] == StreamDelta(usage=EXPECTED)


async def test_streamed_and_plain_answers_with_the_same_usage_cost_the_same(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(json=message(SPLIT_USAGE))
    plain = await adapter.complete(CONFIG, request())
    body = stream_body({**SPLIT_USAGE, "output_tokens": 1}, {"output_tokens": 65})
    respx_mock.post(URL).respond(content=body, headers={"content-type": "text/event-stream"})
    streamed = [delta async for delta in adapter.stream(CONFIG, request(stream=True))][-1].usage

    assert streamed == plain.usage
    assert cost_of_usage(SONNET, streamed) == cost_of_usage(SONNET, plain.usage)


def test_writes_without_the_split_are_5_minute_writes() -> None:
    usage = parse_usage({"input_tokens": 10, "cache_creation_input_tokens": 40, "output_tokens": 1})
    assert (usage.prompt_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (50, 40, 0)


def test_the_split_alone_gives_the_total_when_cache_creation_input_tokens_is_missing() -> None:
    raw = {
        "input_tokens": 10,
        "cache_creation": {"ephemeral_5m_input_tokens": 5, "ephemeral_1h_input_tokens": 7},
    }
    usage = parse_usage(raw)
    assert (usage.prompt_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (22, 12, 7)


@pytest.mark.parametrize(
    ("split", "written_1h"),
    [({"ephemeral_1h_input_tokens": 90}, 40), ({"ephemeral_1h_input_tokens": -3}, 0), (None, 0), ("x", 0)],
)
def test_the_1_hour_part_never_exceeds_the_writes(split: Any, written_1h: int) -> None:
    raw = {"input_tokens": 10, "cache_creation_input_tokens": 40, "cache_creation": split}
    usage = parse_usage(raw)
    assert (usage.cache_write_tokens, usage.cache_write_1h_tokens) == (40, written_1h)


def test_no_cache_fields_means_no_cache_counts() -> None:
    assert parse_usage({"input_tokens": 12, "output_tokens": 3}) == Usage(
        prompt_tokens=12, completion_tokens=3
    )
