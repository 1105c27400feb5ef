"""What a door is: a codec between one client dialect and the canonical request and result."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from config.api_errors import ApiError
from routing.pipeline.types import Completion, CompletionInput, StreamMeta, StreamRenderer

__all__ = ["Door", "StreamRenderer"]


class Door(Protocol):
    name: str  # "chat" | "messages" | "responses"

    def parse(self, body: dict[str, Any], headers: Mapping[str, str]) -> CompletionInput:
        """Validates a body (raises InvalidRequest naming the field) into the canonical request."""
        ...

    def render(self, completion: Completion) -> dict[str, Any]: ...

    def stream_renderer(self, meta: StreamMeta) -> StreamRenderer: ...

    def error_body(self, error: ApiError) -> tuple[int, dict[str, Any]]:
        """The status and body of an error in the dialect's own envelope."""
        ...
