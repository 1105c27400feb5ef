"""One usage shape: the completion body, the stream's usage chunk, compare/batch rows and the schema agree."""

from datetime import UTC, datetime
from decimal import Decimal

import orjson

from config.rendering import dumps
from providers.adapters.base import Usage
from providers.pricing import Cost
from routing.doors.chat import ChatDoor, ChatStreamRenderer
from routing.models import GatewayRequest
from routing.pipeline.types import Completion, StreamMeta
from routing.usage import UsageSerializer, usage_json, usage_json_of_row

NOW = datetime(2026, 12, 1, tzinfo=UTC)
USAGE = Usage(prompt_tokens=20, completion_tokens=7, cached_tokens=4, reasoning_tokens=2)
COST = Cost(Decimal("0.00001"), Decimal("0.0000042"), Decimal("0.0000142"))


def _completion() -> Completion:
    return Completion(
        request_id="req_1",
        model="gpt-4o-mini",
        provider="openai",
        content="hi",
        tool_calls=None,
        finish_reason="stop",
        usage=USAGE,
        cost=COST,
        estimated_cost=Decimal("0.00002"),
        cached=False,
        created_at=NOW,
        latency_ms=5,
        selection_mode="manual",
        models_considered=1,
        attempts=[],
    )


def test_the_schema_documents_exactly_the_keys_usage_json_renders():
    assert set(UsageSerializer().fields) == set(usage_json(USAGE, COST, Decimal(0)))


def test_a_log_row_renders_the_same_usage_as_the_answer_it_logged():
    row = GatewayRequest(
        input_tokens=20,
        output_tokens=7,
        total_tokens=27,
        cached_tokens=4,
        reasoning_tokens=2,
        input_cost_usd=COST.input_cost,
        output_cost_usd=COST.output_cost,
        total_cost_usd=COST.total,
        estimated_cost_usd=Decimal("0.00002"),
    )
    assert usage_json_of_row(row) == ChatDoor().render(_completion())["usage"]


def test_the_stream_usage_chunk_carries_the_body_usage():
    meta = StreamMeta(
        request_id="req_1",
        model="gpt-4o-mini",
        provider="openai",
        created_at=NOW,
        prompt_tokens=20,
        native=False,
        include_usage=True,
    )
    usage_chunk, done = ChatStreamRenderer(meta).end(_completion())
    assert done == b"data: [DONE]\n\n"
    body_usage = dumps(ChatDoor().render(_completion())["usage"])
    assert orjson.loads(usage_chunk.removeprefix(b"data: "))["usage"] == orjson.loads(body_usage)
