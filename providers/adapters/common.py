"""What the vendor adapters share to build requests and read answers: JSON bodies, content parts, tool calls."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from providers.adapters.base import ProviderError

logger = logging.getLogger("providers.adapters")


def drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def is_system(message: Mapping[str, Any]) -> bool:
    return message.get("role") in ("system", "developer")


def content_parts(content: Any) -> list[dict[str, Any]]:
    """OpenAI message content as a list of parts, with empty text parts dropped (vendors reject them)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            part = {"type": "text", "text": part}
        if part.get("type") == "text" and not part.get("text"):
            continue
        parts.append(part)
    return parts


def text_of(content: Any) -> str:
    """The text parts of OpenAI message content, concatenated."""
    return "".join(part["text"] for part in content_parts(content) if part.get("type") == "text")


def image_url_of(part: Mapping[str, Any]) -> str:
    image = part.get("image_url")
    return str(image.get("url", "")) if isinstance(image, Mapping) else str(image or "")


_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)$", re.DOTALL
)


def parse_data_url(url: str) -> tuple[str, str] | None:
    """`data:<mime>;base64,<data>` as (mime, data); None for any other URL."""
    match = _DATA_URL.match(url)
    if match is None:
        return None
    return match.group("mime") or "application/octet-stream", match.group("data")


def parse_json_object(text: str | None) -> dict[str, Any] | None:
    """Parse text as a JSON object; None when it is not one."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def tool_arguments(tool_call: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI tool call's `arguments` JSON string as the object Anthropic and Gemini expect."""
    return parse_json_object(tool_call.get("function", {}).get("arguments")) or {}


def unsupported_content(provider: str, part_type: Any) -> ProviderError:
    """Refuse content a vendor cannot take rather than drop it silently: the 400 the vendor would give."""
    return ProviderError(
        f"{provider}: unsupported content part type {part_type!r}",
        status=400,
        retryable=False,
        extra={"provider": provider, "category": "invalid_request", "local": True},
    )


def merge_turns(turns: Iterable[tuple[str, list[dict[str, Any]]]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Join consecutive turns of the same role and drop empty ones: Anthropic and Gemini want alternation."""
    merged: list[tuple[str, list[dict[str, Any]]]] = []
    for role, parts in turns:
        if not parts:
            continue
        if merged and merged[-1][0] == role:
            merged[-1][1].extend(parts)
        else:
            merged.append((role, list(parts)))
    return merged


def new_tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_call_delta(index: int, call_id: str, name: str, arguments: str = "") -> dict[str, Any]:
    return {"index": index, **tool_call(call_id, name, arguments)}


def tool_choice_name(tool_choice: Any) -> str | None:
    """The function name of a `{"type":"function","function":{"name":…}}` tool choice."""
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        if isinstance(function, Mapping) and function.get("name"):
            return str(function["name"])
    return None


def response_format_type(response_format: Mapping[str, Any] | None) -> str | None:
    """`json_object`, `json_schema` or None (text or absent)."""
    kind = (response_format or {}).get("type")
    return kind if kind in ("json_object", "json_schema") else None


def json_schema_of(response_format: Mapping[str, Any] | None) -> dict[str, Any] | None:
    spec = (response_format or {}).get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    return dict(schema) if isinstance(schema, Mapping) else None


def map_finish_reason(provider: str, native: str | None, mapping: Mapping[str, str]) -> str:
    if native is None:
        return "stop"
    mapped = mapping.get(native)
    if mapped is None:
        logger.warning("%s: unknown finish reason %r mapped to 'stop'", provider, native)
        return "stop"
    return mapped


def int_of(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
