"""The one owner of the chat-dialect usage object: completion bodies, stream usage chunks, compare and batch
results, and its OpenAPI schema all come from here, so they cannot drift apart."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from providers.adapters.base import Usage
from providers.pricing import Cost


def usage_json(usage: Usage, cost: Cost, estimated: Decimal) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "input_cost_usd": cost.input_cost,
        "output_cost_usd": cost.output_cost,
        "total_cost_usd": cost.total,
        "estimated_cost_usd": estimated,
    }


def usage_json_of_row(row: Any) -> dict[str, Any]:
    """The same object rebuilt from a request-log row (compare and batch results)."""
    usage = Usage(
        prompt_tokens=row.input_tokens,
        completion_tokens=row.output_tokens,
        cached_tokens=row.cached_tokens,
        reasoning_tokens=row.reasoning_tokens,
    )
    cost = Cost(row.input_cost_usd, row.output_cost_usd, row.total_cost_usd)
    return usage_json(usage, cost, row.estimated_cost_usd)


def _money() -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=30, decimal_places=10, coerce_to_string=False)


class _PromptDetailsSerializer(serializers.Serializer):
    cached_tokens = serializers.IntegerField()


class _CompletionDetailsSerializer(serializers.Serializer):
    reasoning_tokens = serializers.IntegerField()


class UsageSerializer(serializers.Serializer):
    """The schema of usage_json (a test holds the two to the same keys)."""

    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    prompt_tokens_details = _PromptDetailsSerializer()
    completion_tokens_details = _CompletionDetailsSerializer()
    cached_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    input_cost_usd = _money()
    output_cost_usd = _money()
    total_cost_usd = _money()
    estimated_cost_usd = _money()
