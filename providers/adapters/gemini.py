"""Google Gemini adapter: OpenAI chat requests to generateContent, answers and SSE streams back (§7.4-7.6)."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from providers.adapters.base import ChatRequest, ChatResult, ProviderConfig, ProviderError, StreamDelta, Usage
from providers.adapters.calls import post_json, stream_sse
from providers.adapters.common import (
    content_parts,
    drop_none,
    image_url_of,
    int_of,
    is_system,
    json_schema_of,
    map_finish_reason,
    merge_turns,
    new_tool_call_id,
    parse_data_url,
    parse_json_object,
    response_format_type,
    text_of,
    tool_arguments,
    tool_call,
    tool_call_delta,
    tool_choice_name,
    unsupported_content,
)
from providers.adapters.errors import error_from_body, incomplete_stream_error
from providers.adapters.sse import RAW_EVENT, SSEEvent, decode_stream, loads_event

API_VERSION = "v1beta"
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(
        (
            "SAFETY",
            "RECITATION",
            "LANGUAGE",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
            "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT",
            "IMAGE_RECITATION",
            "IMAGE_OTHER",
            "NO_IMAGE",
            "OTHER",
        ),
        "content_filter",
    ),
    **dict.fromkeys(
        (
            "MALFORMED_FUNCTION_CALL",
            "UNEXPECTED_TOOL_CALL",
            "TOO_MANY_TOOL_CALLS",
            "FINISH_REASON_UNSPECIFIED",
        ),
        "stop",
    ),
}
# Gemini's Schema is an OpenAPI subset: these JSON Schema keywords make it answer 400 (§7.4).
UNSUPPORTED_SCHEMA_KEYS = frozenset({"additionalProperties", "$schema", "strict", "$id", "$comment"})
_NAMED_SUBSCHEMAS = frozenset({"properties", "$defs", "definitions", "patternProperties"})


def gemini_schema(schema: Any) -> Any:
    """A JSON Schema with the keywords Gemini rejects removed, at every depth (property names are kept)."""
    if isinstance(schema, list):
        return [gemini_schema(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    cleaned: dict[str, Any] = {}
    for key, value in schema.items():
        if key in UNSUPPORTED_SCHEMA_KEYS:
            continue
        if key in _NAMED_SUBSCHEMAS and isinstance(value, Mapping):
            cleaned[key] = {name: gemini_schema(sub) for name, sub in value.items()}
        else:
            cleaned[key] = gemini_schema(value)
    return cleaned


def _image_part(url: str) -> dict[str, Any]:
    inline = parse_data_url(url)
    if inline is not None:
        mime_type, data = inline
        return {"inlineData": {"mimeType": mime_type, "data": data}}
    # Passed by reference, never fetched by the gateway: no server-side request to user-chosen hosts.
    mime_type = mimetypes.guess_type(urlsplit(url).path)[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime_type, "fileUri": url}}


def _user_parts(provider: str, content: Any) -> list[dict[str, Any]]:
    parts = []
    for part in content_parts(content):
        if part.get("type") == "text":
            parts.append({"text": part["text"]})
        elif part.get("type") == "image_url":
            parts.append(_image_part(image_url_of(part)))
        else:
            raise unsupported_content(provider, part.get("type"))
    return parts


def _model_parts(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"text": text} for text in [text_of(message.get("content"))] if text]
    for call in message.get("tool_calls") or []:
        parts.append(
            {"functionCall": {"name": call.get("function", {}).get("name", ""), "args": tool_arguments(call)}}
        )
    return parts


def _function_response_part(message: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    text = text_of(message.get("content"))
    return {
        "functionResponse": {
            "name": names.get(message.get("tool_call_id", ""), message.get("name", "")),
            # `response` must be an object: JSON objects go as they are, anything else is wrapped.
            "response": parse_json_object(text) or {"content": text},
        }
    }


def translate_messages(
    provider: str, messages: list[dict[str, Any]]
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(systemInstruction, contents): system messages hoisted, roles user/model, same-role turns merged."""
    system_parts = [
        {"text": text}
        for message in messages
        if is_system(message)
        if (text := text_of(message.get("content")))
    ]
    # Gemini 2.x function calls carry no id: a tool result is matched to its call by function name.
    names = {
        call.get("id", ""): call.get("function", {}).get("name", "")
        for message in messages
        if message.get("role") == "assistant"
        for call in message.get("tool_calls") or []
    }
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for message in messages:
        role = message.get("role")
        if role == "user":
            turns.append(("user", _user_parts(provider, message.get("content"))))
        elif role in ("tool", "function"):
            turns.append(("user", [_function_response_part(message, names)]))
        elif role == "assistant":
            turns.append(("model", _model_parts(message)))
    merged = merge_turns(turns)
    for role, parts in merged:
        if role == "user":
            parts.sort(key=lambda part: "functionResponse" not in part)
    contents = [{"role": role, "parts": parts} for role, parts in merged] or [
        {"role": "user", "parts": [{"text": "."}]}
    ]
    return ({"parts": system_parts} if system_parts else None), contents


def _tools(request: ChatRequest) -> list[dict[str, Any]] | None:
    declarations = []
    for tool in request.tools or []:
        if tool.get("type", "function") != "function":
            continue
        function = tool.get("function") or {}
        parameters = function.get("parameters")
        # An object schema without properties is rejected; a function with no parameters omits the field.
        if (
            isinstance(parameters, Mapping)
            and parameters.get("type") == "object"
            and not parameters.get("properties")
        ):
            parameters = None
        declarations.append(
            drop_none(
                {
                    "name": function.get("name"),
                    "description": function.get("description"),
                    "parameters": gemini_schema(parameters) if parameters else None,
                }
            )
        )
    return [{"functionDeclarations": declarations}] if declarations else None


def _tool_config(tool_choice: Any) -> dict[str, Any] | None:
    if name := tool_choice_name(tool_choice):
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    mode = {"auto": "AUTO", "required": "ANY", "none": "NONE"}.get(
        tool_choice if isinstance(tool_choice, str) else ""
    )
    return {"functionCallingConfig": {"mode": mode}} if mode else None


def build_body(provider: str, request: ChatRequest) -> dict[str, Any]:
    system, contents = translate_messages(provider, request.messages)
    tools = _tools(request)
    json_mode = response_format_type(request.response_format)
    schema = json_schema_of(request.response_format) if json_mode == "json_schema" else None
    generation_config = drop_none(
        {
            "temperature": None if request.temperature is None else min(max(request.temperature, 0.0), 2.0),
            "topP": request.top_p,
            "maxOutputTokens": request.max_tokens,
            "stopSequences": request.stop or None,
            "seed": request.seed,
            "responseMimeType": "application/json" if json_mode else None,
            "responseSchema": gemini_schema(schema) if schema else None,
        }
    )
    return drop_none(
        {
            "contents": contents,
            "systemInstruction": system,
            "tools": tools,
            "toolConfig": _tool_config(request.tool_choice) if tools else None,
            "generationConfig": generation_config or None,
        }
    )


def parse_usage(raw: Mapping[str, Any]) -> Usage:
    """promptTokenCount includes cached tokens; thoughtsTokenCount is reported beside candidatesTokenCount."""
    prompt = int_of(raw.get("promptTokenCount")) + int_of(raw.get("toolUsePromptTokenCount"))
    candidates = int_of(raw.get("candidatesTokenCount"))
    thoughts = int_of(raw.get("thoughtsTokenCount"))
    # Some responses already count thoughts inside the candidates; the total tells which (§7.5).
    thoughts_included = thoughts > 0 and prompt + candidates == int_of(raw.get("totalTokenCount"))
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=candidates if thoughts_included else candidates + thoughts,
        cached_tokens=int_of(raw.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def _finish(provider: str, native: str | None, saw_function_call: bool) -> str:
    if native == "STOP" and saw_function_call:
        return "tool_calls"
    return map_finish_reason(provider, native, FINISH_REASONS)


def _function_call(part: Mapping[str, Any]) -> tuple[str, str, str]:
    """(id, name, arguments JSON) of a functionCall part; calls arrive whole, never in fragments."""
    call = part["functionCall"]
    return call.get("id") or new_tool_call_id(), call.get("name", ""), json.dumps(call.get("args") or {})


def _is_answer_text(part: Mapping[str, Any]) -> bool:
    return "text" in part and not part.get("thought")


def _blocked(payload: Mapping[str, Any]) -> bool:
    return bool((payload.get("promptFeedback") or {}).get("blockReason"))


def parse_response(provider: str, payload: Mapping[str, Any]) -> ChatResult:
    usage = parse_usage(payload.get("usageMetadata") or {})
    model = payload.get("modelVersion")
    candidates = payload.get("candidates") or []
    if not candidates:
        if _blocked(payload):
            return ChatResult(content=None, finish_reason="content_filter", usage=usage, upstream_model=model)
        raise ProviderError(
            f"{provider}: response has no candidates",
            status=200,
            retryable=True,
            kind="protocol",
            extra={"provider": provider, "category": "protocol", "usage": usage},
        )
    parts = (candidates[0].get("content") or {}).get("parts") or []
    texts = [part["text"] for part in parts if _is_answer_text(part)]
    tool_calls = [tool_call(*_function_call(part)) for part in parts if "functionCall" in part]
    return ChatResult(
        content="".join(texts) if texts else None,
        finish_reason=_finish(provider, candidates[0].get("finishReason") or "STOP", bool(tool_calls)),
        usage=usage,
        tool_calls=tool_calls or None,
        upstream_model=model,
    )


class GeminiStreamDecoder:
    """`data: {GenerateContentResponse}` events, each a delta; no terminator, so EOF ends the stream."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.done = False
        self.usage: Usage | None = None
        self._finish: str | None = None
        self._tool_calls = 0

    def feed(self, event: SSEEvent) -> Iterable[StreamDelta]:
        if event.event == RAW_EVENT:
            # A bare (possibly multi-line) JSON error body without the `data:` prefix.
            try:
                chunk: Any = json.loads(event.data)
            except ValueError:
                return []
        else:
            chunk = loads_event(self.provider, event.data)
        if isinstance(chunk, list) and chunk:
            chunk = chunk[0]
        if not isinstance(chunk, dict):
            return []
        if chunk.get("error"):
            raise error_from_body(self.provider, status=None, payload=chunk, extra={"mid_stream": True})
        if isinstance(chunk.get("usageMetadata"), Mapping):
            self.usage = parse_usage(chunk["usageMetadata"])  # repeated on later chunks: the last is final
        deltas: list[StreamDelta] = []
        candidates = chunk.get("candidates") or []
        if not candidates:
            if _blocked(chunk) and self._finish is None:
                self._finish = "content_filter"
                deltas.append(StreamDelta(finish_reason=self._finish))
            return deltas
        candidate = candidates[0]
        for part in (candidate.get("content") or {}).get("parts") or []:
            if _is_answer_text(part) and part["text"]:
                deltas.append(StreamDelta(content=part["text"]))
            elif "functionCall" in part:
                deltas.append(
                    StreamDelta(tool_calls=[tool_call_delta(self._tool_calls, *_function_call(part))])
                )
                self._tool_calls += 1
        if candidate.get("finishReason") and self._finish is None:
            self._finish = _finish(self.provider, candidate["finishReason"], self._tool_calls > 0)
            deltas.append(StreamDelta(finish_reason=self._finish))
        return deltas

    def close(self) -> Iterable[StreamDelta]:
        if self._finish is None:
            raise incomplete_stream_error(self.provider)
        return [StreamDelta(usage=self.usage)] if self.usage is not None else []


class GeminiAdapter:
    name = "google"
    default_base_url = "https://generativelanguage.googleapis.com"

    def _model_url(self, config: ProviderConfig, model: str) -> str:
        base = (config.base_url or self.default_base_url).rstrip("/")
        return f"{base}/{API_VERSION}/models/{quote(model.removeprefix('models/'), safe='-._~')}"

    def url(self, config: ProviderConfig, model: str, *, stream: bool = False) -> str:
        if stream:
            # Without alt=sse the endpoint streams one JSON array instead of SSE.
            return f"{self._model_url(config, model)}:streamGenerateContent?alt=sse"
        return f"{self._model_url(config, model)}:generateContent"

    def headers(self, config: ProviderConfig) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if config.api_key:
            headers["x-goog-api-key"] = config.api_key  # a header keeps the key out of URLs and logs
        return headers

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        return build_body(self.name, request)

    async def complete(self, config: ProviderConfig, request: ChatRequest) -> ChatResult:
        payload = await post_json(
            config, self.url(config, request.model), self.headers(config), self.build_body(request)
        )
        return parse_response(self.name, payload)

    async def stream(self, config: ProviderConfig, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        url = self.url(config, request.model, stream=True)
        events = stream_sse(config, url, self.headers(config), self.build_body(request))
        async for delta in decode_stream(events, GeminiStreamDecoder(self.name)):
            yield delta
