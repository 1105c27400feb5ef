"""The Chat Completions door: OpenAI's chat dialect plus the router's own fields (api.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ValidationError

from config.api_errors import ApiError, InvalidRequest, api_error_from_exception
from config.rendering import dumps
from routing.api.serializers import completion_input_validate
from routing.pipeline.types import Completion, CompletionInput, StreamDelta, StreamMeta
from routing.usage import usage_json

SSE_DONE = b"data: [DONE]\n\n"


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + dumps(data) + b"\n\n"


def _message(content: str | None, tool_calls: list[dict[str, Any]] | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _usage(completion: Completion) -> dict[str, Any]:
    return usage_json(completion.usage, completion.cost, completion.estimated_cost)


class ChatStreamRenderer:
    """chat.completion.chunk events: a role chunk, deltas, a finish chunk, the usage chunk, [DONE]."""

    def __init__(self, meta: StreamMeta) -> None:
        self.meta = meta
        self.created = int(meta.created_at.timestamp())

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return sse(
            {
                "id": self.meta.request_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.meta.model,
                "provider": self.meta.provider,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
        )

    def start(self) -> list[bytes]:
        return [self.chunk({"role": "assistant", "content": ""})]

    def delta(self, delta: StreamDelta) -> list[bytes]:
        out: list[bytes] = []
        if delta.content:
            out.append(self.chunk({"content": delta.content}))
        if delta.tool_calls:
            out.append(self.chunk({"tool_calls": delta.tool_calls}))
        if delta.finish_reason:
            out.append(self.chunk({}, delta.finish_reason))
        return out

    def end(self, completion: Completion) -> list[bytes]:
        if not self.meta.include_usage:
            return [SSE_DONE]
        usage_chunk = {
            "id": self.meta.request_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.meta.model,
            "provider": self.meta.provider,
            "choices": [],
            "usage": _usage(completion),
        }
        return [sse(usage_chunk), SSE_DONE]

    def fail(self, error: ApiError) -> list[bytes]:
        return [sse(error.body()), SSE_DONE]


class ChatDoor:
    name = "chat"

    def parse(self, body: dict[str, Any], headers: Mapping[str, str]) -> CompletionInput:
        try:
            return completion_input_validate(
                body,
                cache_control=headers.get("Cache-Control", ""),
                client_request_id=headers.get("X-Client-Request-Id", ""),
            )
        except ValidationError as exc:
            raise api_error_from_exception(exc) or InvalidRequest("Invalid request") from None

    def render(self, completion: Completion) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": completion.request_id,
            "object": "chat.completion",
            "created": int(completion.created_at.timestamp()),
            "model": completion.model,
            "provider": completion.provider,
            "choices": [
                {
                    "index": 0,
                    "message": _message(completion.content, completion.tool_calls),
                    "finish_reason": completion.finish_reason,
                }
            ],
            "content": completion.content,
            "finish_reason": completion.finish_reason,
            "usage": _usage(completion),
            "latency_ms": completion.latency_ms,
            "created_at": completion.created_at.isoformat().replace("+00:00", "Z"),
            "selection_mode": completion.selection_mode,
            "models_considered": completion.models_considered,
            "cached": completion.cached,
            "attempts": completion.attempts,
        }
        if completion.budget_fitted:
            body["budget_fitted"] = True
            body["max_tokens_applied"] = completion.max_tokens_applied
        return body

    def stream_renderer(self, meta: StreamMeta) -> ChatStreamRenderer:
        return ChatStreamRenderer(meta)

    def error_body(self, error: ApiError) -> tuple[int, dict[str, Any]]:
        return error.status, error.body()


CHAT = ChatDoor()
