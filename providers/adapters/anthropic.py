"""Anthropic Messages adapter: OpenAI chat requests to /v1/messages, answers and streams back (§7.1-7.3)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from providers.adapters.anthropic_usage import parse_usage
from providers.adapters.base import ChatRequest, ChatResult, ProviderConfig, StreamDelta, Usage
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
    parse_data_url,
    response_format_type,
    tool_arguments,
    tool_call,
    tool_call_delta,
    tool_choice_name,
    unsupported_content,
)
from providers.adapters.errors import error_from_body, incomplete_stream_error
from providers.adapters.native import PassThroughDecoder, forwarded_headers, native_body
from providers.adapters.sse import RAW_EVENT, SSEEvent, StreamDecoder, decode_stream, loads_event

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # max_tokens is required; LiteLLM's long-standing default (§7.1)
# JSON mode is a forced tool whose input is the answer (§7.1): portable across every Claude model.
JSON_TOOL_NAME = "json_tool_call"
JSON_OBJECT_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": True, "properties": {}}
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
# Anthropic refuses tool_use/tool_result blocks in a request that defines no tools (§7.1.6).
PLACEHOLDER_TOOL = {
    "name": "placeholder_tool",
    "description": "Unused; present because the conversation history contains tool calls.",
    "input_schema": EMPTY_SCHEMA,
}

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "length",
    "model_context_window_exceeded": "length",
}
_TOOL_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def _tool_id(call_id: str) -> str:
    # Anthropic ids must match ^[a-zA-Z0-9_-]+$; the same rewrite applies to tool_use and tool_result.
    return _TOOL_ID_UNSAFE.sub("_", call_id) or "toolu_missing"


def _text_block(part: Mapping[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part["text"]}
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _image_block(url: str) -> dict[str, Any]:
    inline = parse_data_url(url)
    if inline is not None:
        media_type, data = inline
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _user_blocks(provider: str, content: Any) -> list[dict[str, Any]]:
    blocks = []
    for part in content_parts(content):
        if part.get("type") == "text":
            blocks.append(_text_block(part))
        elif part.get("type") == "image_url":
            blocks.append(_image_block(image_url_of(part)))
        else:
            raise unsupported_content(provider, part.get("type"))
    return blocks


def _assistant_blocks(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    blocks = [
        _text_block(part) for part in content_parts(message.get("content")) if part.get("type") == "text"
    ]
    for call in message.get("tool_calls") or []:
        blocks.append(
            {
                "type": "tool_use",
                "id": _tool_id(call.get("id", "")),
                "name": call.get("function", {}).get("name", ""),
                "input": tool_arguments(call),
            }
        )
    return blocks


def _tool_result_block(message: Mapping[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": _tool_id(message.get("tool_call_id", ""))}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    elif parts := content_parts(content):
        block["content"] = [_text_block(part) for part in parts if part.get("type") == "text"]
    return block


def translate_messages(
    provider: str, messages: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict]]:
    """(system blocks, alternating messages). Every system message is hoisted, in order (§7.1.1)."""
    system = [
        _text_block(part)
        for message in messages
        if is_system(message)
        for part in content_parts(message.get("content"))
        if part.get("type") == "text"
    ]
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for message in messages:
        role = message.get("role")
        if role == "user":
            turns.append(("user", _user_blocks(provider, message.get("content"))))
        elif role in ("tool", "function"):
            turns.append(("user", [_tool_result_block(message)]))
        elif role == "assistant":
            turns.append(("assistant", _assistant_blocks(message)))
    merged = merge_turns(turns)
    for role, blocks in merged:
        if role == "user":
            # Tool results must open the turn that answers the tool calls.
            blocks.sort(key=lambda block: block["type"] != "tool_result")
    if merged and merged[-1][0] == "assistant":
        # A final assistant turn is a prefill; Anthropic rejects trailing whitespace on it.
        last = merged[-1][1][-1]
        if last["type"] == "text":
            last["text"] = last["text"].rstrip()
            if not last["text"]:
                merged[-1][1].pop()
                if not merged[-1][1]:
                    merged.pop()
    if not merged or merged[0][0] != "user":
        merged.insert(0, ("user", [{"type": "text", "text": "." if merged else "Please continue."}]))
    return system, [{"role": role, "content": blocks} for role, blocks in merged]


def _tools(request: ChatRequest) -> list[dict[str, Any]]:
    tools = []
    for tool in request.tools or []:
        if tool.get("type", "function") != "function":
            continue
        function = tool.get("function") or {}
        tools.append(
            drop_none(
                {
                    "name": function.get("name"),
                    "description": function.get("description"),
                    "input_schema": function.get("parameters") or EMPTY_SCHEMA,
                }
            )
        )
    return tools


def _tool_choice(tool_choice: Any) -> dict[str, Any] | None:
    if name := tool_choice_name(tool_choice):
        return {"type": "tool", "name": name}
    return {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}.get(
        tool_choice if isinstance(tool_choice, str) else ""
    )


def build_body(provider: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    system, messages = translate_messages(provider, request.messages)
    tools = _tools(request)
    tool_choice = _tool_choice(request.tool_choice) if tools else None
    if response_format_type(request.response_format):
        schema = json_schema_of(request.response_format) or JSON_OBJECT_SCHEMA
        tools.append(
            {"name": JSON_TOOL_NAME, "description": "Respond with a JSON object.", "input_schema": schema}
        )
        if len(tools) == 1:
            tool_choice = {"type": "tool", "name": JSON_TOOL_NAME}
    elif not tools and any(
        block["type"] in ("tool_use", "tool_result") for message in messages for block in message["content"]
    ):
        tools = [PLACEHOLDER_TOOL]
    temperature = None if request.temperature is None else min(max(request.temperature, 0.0), 1.0)
    stop = [sequence for sequence in request.stop or [] if sequence.strip()]
    user = request.user if request.user and "@" not in request.user else None
    return drop_none(
        {
            "model": request.model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "system": system or None,
            "messages": messages,
            "temperature": temperature,
            # Newer Claude models reject temperature together with top_p; temperature wins.
            "top_p": request.top_p if temperature is None else None,
            "stop_sequences": stop or None,
            "tools": tools or None,
            "tool_choice": tool_choice,
            "metadata": {"user_id": user} if user else None,
            "stream": True if stream else None,
        }
    )


def _finish(provider: str, stop_reason: str | None, answered_with_json_tool: bool) -> str:
    if answered_with_json_tool and stop_reason in ("tool_use", None):
        return "stop"
    return map_finish_reason(provider, stop_reason, FINISH_REASONS)


def parse_response(provider: str, payload: Mapping[str, Any], *, json_mode: bool) -> ChatResult:
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    answered_with_json_tool = False
    for block in payload.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            arguments = json.dumps(block.get("input") or {})
            if json_mode and block.get("name") == JSON_TOOL_NAME:
                texts.append(arguments)
                answered_with_json_tool = True
            else:
                tool_calls.append(tool_call(block.get("id", ""), block.get("name", ""), arguments))
    return ChatResult(
        content="".join(texts) if texts else None,
        finish_reason=_finish(
            provider, payload.get("stop_reason"), answered_with_json_tool and not tool_calls
        ),
        usage=parse_usage(payload.get("usage") or {}),
        tool_calls=tool_calls or None,
        upstream_model=payload.get("model"),
    )


class AnthropicStreamDecoder:
    """The §7.3 state machine: message_start → content blocks → message_delta → message_stop."""

    def __init__(self, provider: str, *, json_mode: bool) -> None:
        self.provider = provider
        self.json_mode = json_mode
        self.done = False
        self.usage: Usage | None = None
        self._raw_usage: dict[str, Any] = {}
        self._stop_reason: str | None = None
        self._tool_index: dict[int, int] = {}  # Anthropic block index → OpenAI tool-call index
        self._json_blocks: set[int] = set()
        self._finished = False

    def _take_usage(self, raw: Any) -> None:
        if isinstance(raw, Mapping):
            # message_delta's usage is cumulative and may repeat the input counts; keep the newest values.
            self._raw_usage.update({key: value for key, value in raw.items() if value is not None})
            self.usage = parse_usage(self._raw_usage)

    def feed(self, event: SSEEvent) -> Iterable[StreamDelta]:
        if event.event == RAW_EVENT:
            return []
        data = loads_event(self.provider, event.data)
        if not isinstance(data, dict):
            return []
        kind = data.get("type") or event.event
        if kind == "message_start":
            self._take_usage((data.get("message") or {}).get("usage"))
        elif kind == "content_block_start":
            return self._block_start(int_of(data.get("index")), data.get("content_block") or {})
        elif kind == "content_block_delta":
            return self._block_delta(int_of(data.get("index")), data.get("delta") or {})
        elif kind == "message_delta":
            self._stop_reason = (data.get("delta") or {}).get("stop_reason") or self._stop_reason
            self._take_usage(data.get("usage"))
        elif kind == "message_stop":
            self.done = True
            return self._final()
        elif kind == "error":
            raise error_from_body(self.provider, status=None, payload=data, extra={"mid_stream": True})
        return []

    def _block_start(self, index: int, block: Mapping[str, Any]) -> list[StreamDelta]:
        if block.get("type") == "text" and block.get("text"):
            return [StreamDelta(content=block["text"])]
        if block.get("type") == "tool_use":
            if self.json_mode and block.get("name") == JSON_TOOL_NAME:
                self._json_blocks.add(index)
                return []
            position = self._tool_index[index] = len(self._tool_index)
            return [
                StreamDelta(
                    tool_calls=[tool_call_delta(position, block.get("id", ""), block.get("name", ""))]
                )
            ]
        return []

    def _block_delta(self, index: int, delta: Mapping[str, Any]) -> list[StreamDelta]:
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [StreamDelta(content=delta["text"])]
        if delta.get("type") == "input_json_delta" and (fragment := delta.get("partial_json")):
            if index in self._json_blocks:
                return [StreamDelta(content=fragment)]
            if index in self._tool_index:
                return [
                    StreamDelta(
                        tool_calls=[{"index": self._tool_index[index], "function": {"arguments": fragment}}]
                    )
                ]
        return []

    def _final(self) -> list[StreamDelta]:
        if self._finished:
            return []
        self._finished = True
        json_answer = bool(self._json_blocks) and not self._tool_index
        deltas = [StreamDelta(finish_reason=_finish(self.provider, self._stop_reason, json_answer))]
        if self.usage is not None:
            deltas.append(StreamDelta(usage=self.usage))
        return deltas

    def close(self) -> Iterable[StreamDelta]:
        if self._finished:
            return []
        if self._stop_reason is None:
            raise incomplete_stream_error(self.provider)
        # message_delta carried the stop reason; only the closing message_stop was lost.
        return self._final()


class AnthropicAdapter:
    name = "anthropic"
    default_base_url = "https://api.anthropic.com"  # the SDK convention: the base excludes /v1

    def url(self, config: ProviderConfig) -> str:
        return f"{(config.base_url or self.default_base_url).rstrip('/')}/v1/messages"

    def headers(self, config: ProviderConfig) -> dict[str, str]:
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if config.api_key:
            headers["x-api-key"] = config.api_key
        return headers

    def build_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        return build_body(self.name, request, stream=stream)

    def request_parts(
        self, config: ProviderConfig, request: ChatRequest, *, stream: bool
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """Headers and body: the client's own Messages body when native (anthropic-beta forwarded)."""
        if request.native is None:
            return self.headers(config), self.build_body(request, stream=stream)
        headers = {**self.headers(config), **forwarded_headers(request.native_headers)}
        body = native_body(
            request, max_tokens_field="max_tokens", stream=stream, default_max_tokens=DEFAULT_MAX_TOKENS
        )
        return headers, body

    async def complete(self, config: ProviderConfig, request: ChatRequest) -> ChatResult:
        headers, body = self.request_parts(config, request, stream=False)
        payload = await post_json(config, self.url(config), headers, body)
        result = parse_response(self.name, payload, json_mode=_json_mode(request))
        if request.native is not None:
            result.raw = payload
        return result

    async def stream(self, config: ProviderConfig, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        headers, body = self.request_parts(config, request, stream=True)
        events = stream_sse(config, self.url(config), headers, body)
        decoder: StreamDecoder = AnthropicStreamDecoder(self.name, json_mode=_json_mode(request))
        if request.native is not None:
            decoder = PassThroughDecoder(decoder)
        async for delta in decode_stream(events, decoder):
            yield delta


def _json_mode(request: ChatRequest) -> bool:
    # A native body asks for JSON its own way; only a translated request uses the JSON tool.
    return request.native is None and response_format_type(request.response_format) is not None
