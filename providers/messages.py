"""The OpenAI chat message every /v1 endpoint accepts, validated one way for the gateway and the estimates."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from config.serializers import JsonBodySerializer

ROLES = ("system", "developer", "user", "assistant", "tool", "function")


class StrictCharField(serializers.CharField):
    """JSON strings only: a number where a name belongs is a mistake worth a 400 (OpenAI's API says so too)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


CONTENT_PART_TYPES = ("text", "image_url", "input_audio", "file")


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string"},
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"type": {"type": "string", "enum": list(CONTENT_PART_TYPES)}},
                    "required": ["type"],
                },
            },
        ],
        "nullable": True,
    }
)
class MessageContentField(serializers.JSONField):
    """A string or a list of OpenAI content parts (checked in MessageSerializer.validate_content)."""


@extend_schema_serializer(component_name="ChatMessage")
class MessageSerializer(JsonBodySerializer):
    role = serializers.ChoiceField(choices=ROLES)
    content = MessageContentField(required=False, allow_null=True)
    name = StrictCharField(required=False, max_length=256)
    tool_calls = serializers.ListField(child=serializers.DictField(), required=False)
    tool_call_id = StrictCharField(required=False, max_length=256)

    def validate_content(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, list):
            for part in value:
                if not isinstance(part, dict) or part.get("type") not in CONTENT_PART_TYPES:
                    raise serializers.ValidationError(
                        "content parts must be objects with type text or image_url"
                    )
                if part["type"] == "text" and not isinstance(part.get("text"), str):
                    raise serializers.ValidationError("a text part needs a string 'text'")
                if part["type"] == "image_url" and not isinstance(part.get("image_url"), dict | str):
                    raise serializers.ValidationError("an image_url part needs an 'image_url' object")
            return value
        raise serializers.ValidationError("content must be a string or a list of content parts")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        content = attrs.get("content")
        if attrs["role"] != "assistant" and content is None:
            raise serializers.ValidationError({"content": "content is required for this role"})
        if attrs["role"] == "assistant" and content is None and not attrs.get("tool_calls"):
            raise serializers.ValidationError({"content": "an assistant message needs content or tool_calls"})
        return attrs
