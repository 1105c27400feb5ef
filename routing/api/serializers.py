"""Validation of /v1/chat/completions bodies into CompletionInput (400 naming the field on bad input)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.serializers import JsonBodySerializer
from providers.messages import MessageSerializer, StrictCharField
from routing import engine
from routing.pipeline.types import CompletionInput

PROVIDERS = ("openai", "anthropic", "google", "deepseek")


def _json_number_only(field: serializers.Field, data: Any) -> None:
    """Numbers only: DRF would take true as 1 and "0.5" as 0.5, a client's mistake it should be told about."""
    if isinstance(data, bool) or not isinstance(data, int | float):
        field.fail("invalid")


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data: Any) -> float:
        _json_number_only(self, data)
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        _json_number_only(self, data)
        return super().to_internal_value(data)


class StrictDecimalField(serializers.DecimalField):
    def to_internal_value(self, data: Any) -> Any:
        _json_number_only(self, data)
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}],
        "nullable": True,
    }
)
class StopField(serializers.JSONField):
    """A string or up to four strings (checked in CompletionInputSerializer.validate_stop)."""


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "enum": ["none", "auto", "required"]},
            {"type": "object", "properties": {"type": {"type": "string", "enum": ["function"]}}},
        ],
        "nullable": True,
    }
)
class ToolChoiceField(serializers.JSONField):
    """none, auto, required or a function choice (checked in validate_tool_choice)."""


class StrictBooleanField(serializers.BooleanField):
    """JSON booleans only: "yes" or 1 are mistakes worth a 400, not guesses."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class CompletionInputSerializer(JsonBodySerializer):
    messages = MessageSerializer(many=True, allow_empty=False, max_length=10_000)  # type: ignore[call-arg]
    model = StrictCharField(required=False, max_length=200)
    mode = serializers.ChoiceField(choices=engine.MODES, default=engine.MODE_MANUAL)
    models = serializers.ListField(
        child=StrictCharField(max_length=200), required=False, allow_empty=False, max_length=100
    )
    provider_filter = serializers.ListField(
        child=serializers.ChoiceField(choices=PROVIDERS), required=False, allow_empty=False
    )
    fallbacks = serializers.ListField(child=StrictCharField(max_length=200), default=list, max_length=10)
    max_cost = StrictDecimalField(max_digits=20, decimal_places=10, min_value=0, required=False)
    expected_output_tokens = StrictIntegerField(
        min_value=1, max_value=2_000_000, default=engine.DEFAULT_EXPECTED_OUTPUT_TOKENS
    )
    temperature = StrictFloatField(min_value=0, max_value=2, required=False, allow_null=True)
    top_p = StrictFloatField(min_value=0, max_value=1, required=False, allow_null=True)
    max_tokens = StrictIntegerField(min_value=1, max_value=2_000_000, required=False, allow_null=True)
    max_completion_tokens = StrictIntegerField(
        min_value=1, max_value=2_000_000, required=False, allow_null=True
    )
    stop = StopField(required=False, allow_null=True)
    seed = StrictIntegerField(required=False, allow_null=True)
    user = StrictCharField(required=False, max_length=256, allow_null=True)
    n = StrictIntegerField(required=False, min_value=1, max_value=1, allow_null=True)
    tools = serializers.ListField(
        child=serializers.DictField(), required=False, allow_null=True, max_length=128
    )
    tool_choice = ToolChoiceField(required=False, allow_null=True)
    response_format = serializers.DictField(required=False, allow_null=True)
    stream = StrictBooleanField(default=False)
    stream_options = serializers.DictField(required=False, allow_null=True)
    cache = StrictBooleanField(default=True)
    budget_policy = serializers.ChoiceField(choices=("refuse", "fit"), default="refuse")

    def validate_stop(self, value: Any) -> list[str] | None:
        if value is None:
            return None
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(s, str) for s in value) and len(value) <= 4:
            return value or None
        raise serializers.ValidationError("stop must be a string or a list of up to 4 strings")

    def validate_tools(self, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for tool in value or []:
            function = tool.get("function")
            if tool.get("type") != "function" or not isinstance(function, dict) or not function.get("name"):
                raise serializers.ValidationError(
                    "each tool is {'type': 'function', 'function': {'name': …}}"
                )
        return value or None

    def validate_tool_choice(self, value: Any) -> Any:
        if value is None or value in ("none", "auto", "required"):
            return value
        if (
            isinstance(value, dict)
            and value.get("type") == "function"
            and isinstance(value.get("function"), dict)
        ):
            return value
        raise serializers.ValidationError("tool_choice must be none, auto, required or a function choice")

    def validate_response_format(self, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("type") not in ("text", "json_object", "json_schema"):
            raise serializers.ValidationError("response_format.type must be text, json_object or json_schema")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("mode", engine.MODE_MANUAL) == engine.MODE_MANUAL and not attrs.get("model"):
            raise serializers.ValidationError({"model": "model is required in manual mode"})
        return attrs

    def to_input(self, *, cache_control: str = "", client_request_id: str = "") -> CompletionInput:
        return completion_input_from(
            self.validated_data,
            self.initial_data,
            cache_control=cache_control,
            client_request_id=client_request_id,
        )


# One instance validates every request: DRF deep-copies a serializer's fields per instance, which cost
# more CPU than the rest of a gateway request. run_validation keeps no state on the instance.
_VALIDATOR = CompletionInputSerializer()


def completion_input_validate(
    raw: dict[str, Any], *, cache_control: str = "", client_request_id: str = ""
) -> CompletionInput:
    """Validates a request body (raises DRF ValidationError) into a CompletionInput."""
    validated = _VALIDATOR.run_validation(raw)
    return completion_input_from(
        validated, raw, cache_control=cache_control, client_request_id=client_request_id
    )


def completion_input_from(
    data: dict[str, Any], raw: dict[str, Any], *, cache_control: str, client_request_id: str
) -> CompletionInput:
    directives = {d.strip().lower() for d in cache_control.split(",")}
    stream_options = data.get("stream_options") or {}
    return CompletionInput(
        messages=[dict(m) for m in raw["messages"]],
        model=data.get("model"),
        mode=data["mode"],
        models=data.get("models"),
        provider_filter=data.get("provider_filter"),
        fallbacks=data["fallbacks"],
        max_cost=data.get("max_cost"),
        expected_output_tokens=data["expected_output_tokens"],
        temperature=data.get("temperature"),
        top_p=data.get("top_p"),
        max_tokens=data.get("max_completion_tokens") or data.get("max_tokens"),
        stop=data.get("stop"),
        seed=data.get("seed"),
        user=data.get("user"),
        tools=data.get("tools"),
        tool_choice=data.get("tool_choice"),
        response_format=data.get("response_format"),
        stream=data["stream"],
        include_usage=bool(stream_options.get("include_usage")),
        cache_read=data["cache"] and "no-cache" not in directives,
        cache_write=data["cache"] and "no-store" not in directives,
        budget_policy=data["budget_policy"],
        client_request_id=client_request_id[:200],
    )
