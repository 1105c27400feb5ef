"""What /v1/messages answers: the Message body, Anthropic's SSE stream, the error envelope, the models page."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from config.api_errors import ApiError
from config.rendering import dumps
from providers.adapters.base import Usage
from providers.adapters.common import parse_json_object
from routing.pipeline.types import Completion, StreamDelta, StreamMeta

logger = logging.getLogger(__name__)

# Canonical (OpenAI) finish reasons to Anthropic's stop_reason (§3.7); anything else is a normal end.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "refusal": "refusal",
}
_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")

# Our statuses to Anthropic's error types; the SDK picks its exception class by status alone (§2.5).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# Upstream statuses that mean "busy or broken right now": worth the SDK's retry-with-backoff on a 529.
_TRANSIENT_UPSTREAM = frozenset({408, 409, 429})


def message_id(request_id: str) -> str:
    return "msg_" + request_id.removeprefix("req_")


def tool_use_id(upstream_id: Any, request_id: str, index: int) -> str:
    """The upstream id when Anthropic would accept it back in a tool_result, else a stable `toolu_` id."""
    if isinstance(upstream_id, str) and _TOOL_ID.match(upstream_id):
        return upstream_id
    seed = f"{request_id}:{index}:{upstream_id or ''}".encode()
    return "toolu_" + hashlib.sha256(seed).hexdigest()[:24]


def stop_reason(finish_reason: str | None) -> str:
    return STOP_REASONS.get(finish_reason or "", "end_turn")


def usage_json(usage: Usage) -> dict[str, int]:
    """Anthropic's input_tokens exclude cache reads and writes; the canonical prompt_tokens include both."""
    return {
        "input_tokens": max(usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens, 0),
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }


def _overload_like(error: ApiError) -> bool:
    """All candidates failed the generic way and the last one was busy or down, not refusing us for good.

    A 529 makes the SDK (and Claude Code) back off and retry, which is right for overload, rate limits and 5xx;
    a permanent upstream refusal (402 on our provider account, say) stays a 502 so nobody retries in vain.
    """
    if error.code != "upstream_error":
        return False
    attempts = error.extra.get("attempts") or []
    last = attempts[-1].get("status_code") if attempts and isinstance(attempts[-1], dict) else None
    return last is None or last >= 500 or last in _TRANSIENT_UPSTREAM


def error_status_type(error: ApiError) -> tuple[int, str, str]:
    """(HTTP status, Anthropic error type, message) for one of our errors."""
    if error.code == "context_length_exceeded":
        # Anthropic answers an oversized prompt with a 400 whose message starts like this; Claude Code reads
        # that phrase to offer compaction.
        return 400, "invalid_request_error", f"prompt is too long: {error.message}"
    if error.code == "model_not_found":
        return 404, "not_found_error", error.message  # what Anthropic answers for a model it does not know
    if error.status == 502 and _overload_like(error):
        return 529, "overloaded_error", error.message
    kind = ERROR_TYPES.get(error.status)
    if kind is None:
        # Anthropic has no type per status beyond these; a client fault stays a client fault.
        kind = "invalid_request_error" if 400 <= error.status < 500 else "api_error"
    return error.status, kind, error.message


def error_json(error: ApiError) -> tuple[int, dict[str, Any]]:
    status, kind, message = error_status_type(error)
    # Budget details (402) and attempts ride inside the error object, which the SDK keeps as `.body`.
    details = {key: value for key, value in error.extra.items() if key not in ("type", "message")}
    return status, {
        "type": "error",
        "error": {"type": kind, "message": message, **details},
        "request_id": None,
    }


def message_json(completion: Completion) -> dict[str, Any]:
    """The Message body (§2.3): Claude's own when it answered natively, else built from the canonical result."""
    if completion.raw is not None:
        return {**completion.raw, "model": completion.model, "router": completion.router_facts()}
    names: dict[str, str] = completion.door_params.get("tool_names") or {}
    content: list[dict[str, Any]] = []
    if completion.content:
        content.append({"type": "text", "text": completion.content})
    for index, call in enumerate(completion.tool_calls or []):
        function = call.get("function") or {}
        name = function.get("name") or ""
        block = {
            "type": "tool_use",
            "id": tool_use_id(call.get("id"), completion.request_id, index),
            "name": names.get(name, name),
            # tool_use.input must be an object (§2.3); a model's broken JSON becomes {}.
            "input": parse_json_object(function.get("arguments")) or {},
        }
        content.append(block)
    return {
        "id": message_id(completion.request_id),
        "type": "message",
        "role": "assistant",
        "model": completion.model,
        "content": content,
        "stop_reason": stop_reason(completion.finish_reason),
        "stop_sequence": None,
        "usage": usage_json(completion.usage),
        "router": completion.router_facts(),
    }


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def models_list(models: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Anthropic's /v1/models page (§2.6), everything on one page."""
    data = []
    for model in models:
        info: dict[str, Any] = {
            "type": "model",
            "id": model["id"],
            "display_name": model.get("display_name") or model["id"],
            "created_at": _rfc3339(model["created_at"]),
        }
        if model.get("context_window") is not None:
            info["max_input_tokens"] = model["context_window"]
        if model.get("max_output_tokens") is not None:
            info["max_tokens"] = model["max_output_tokens"]
        data.append(info)
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return {"data": data, "has_more": False, "first_id": first, "last_id": last}


def event(kind: str, data: dict[str, Any]) -> bytes:
    # The SDK dispatches on the `event:` line and drops an event without one (§2.4).
    return b"event: " + kind.encode() + b"\ndata: " + dumps(data) + b"\n\n"


class MessagesStreamRenderer:
    """Canonical deltas to message_start → content blocks (one open at a time, indices 0, 1, …) → message_delta
    → message_stop. A native stream already is Anthropic's: its raw events pass through untouched."""

    def __init__(self, meta: StreamMeta) -> None:
        self.meta = meta
        self._tool_names: dict[str, str] = meta.door_params.get("tool_names") or {}
        self._next_index = 0
        self._open: str | None = None  # "text" | "tool_use" | None
        self._tool: int | None = None  # canonical index of the tool call whose block is open
        self._closed_tools: set[int] = set()

    def start(self) -> list[bytes]:
        if self.meta.native:
            return []
        message: dict[str, Any] = {
            "id": message_id(self.meta.request_id),
            "type": "message",
            "role": "assistant",
            "model": self.meta.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # An estimate: the real counts follow on message_delta, which the SDK lets overwrite these.
            "usage": {"input_tokens": self.meta.prompt_tokens, "output_tokens": 0},
        }
        return [event("message_start", {"type": "message_start", "message": message})]

    def delta(self, delta: StreamDelta) -> list[bytes]:
        if self.meta.native:
            return [delta.raw] if delta.raw else []
        out: list[bytes] = []
        if delta.content:
            if self._open != "text":
                out += self._close()
                out += self._open_block("text", {"type": "text", "text": ""})
            text = {"type": "text_delta", "text": delta.content}
            out.append(self._block_event("content_block_delta", delta=text))
        for call in delta.tool_calls or []:
            out += self._tool_delta(call)
        return out

    def _tool_delta(self, call: dict[str, Any]) -> list[bytes]:
        index = call.get("index", 0)
        function = call.get("function") or {}
        out: list[bytes] = []
        if self._open != "tool_use" or self._tool != index:
            if index in self._closed_tools:
                # Anthropic cannot reopen a block; OpenAI-shaped streams finish one call before the next.
                logger.warning("messages stream: late fragment for tool call %s dropped", index)
                return []
            out += self._close()
            name = function.get("name") or ""
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": tool_use_id(call.get("id"), self.meta.request_id, index),
                "name": self._tool_names.get(name, name),
                "input": {},
            }
            out += self._open_block("tool_use", block)
            self._tool = index
        if arguments := function.get("arguments"):
            fragment = {"type": "input_json_delta", "partial_json": arguments}
            out.append(self._block_event("content_block_delta", delta=fragment))
        return out

    def end(self, completion: Completion) -> list[bytes]:
        if self.meta.native:
            return []  # the vendor's own message_delta and message_stop went through delta()
        out = self._close()
        data = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(completion.finish_reason), "stop_sequence": None},
            "usage": usage_json(completion.usage),
            # Headers went out before the cost was known; the SDK ignores the extra key.
            "router": completion.router_facts(),
        }
        out.append(event("message_delta", data))
        out.append(event("message_stop", {"type": "message_stop"}))
        return out

    def fail(self, error: ApiError) -> list[bytes]:
        _, kind, message = error_status_type(error)
        return [event("error", {"type": "error", "error": {"type": kind, "message": message}})]

    def _open_block(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        self._open = kind
        return [self._block_event("content_block_start", content_block=block)]

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        closing = self._block_event("content_block_stop")
        if self._open == "tool_use" and self._tool is not None:
            self._closed_tools.add(self._tool)
            self._tool = None
        self._open = None
        self._next_index += 1
        return [closing]

    def _block_event(self, kind: str, **fields: Any) -> bytes:
        return event(kind, {"type": kind, "index": self._next_index, **fields})
