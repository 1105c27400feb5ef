"""What a door is: a codec between one client dialect and the canonical request and result."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from config.api_errors import ApiError
from routing.pipeline.types import Completion, CompletionInput, StreamMeta, StreamRenderer

__all__ = ["Door", "DoorCodec", "StreamRenderer"]


class DoorCodec(Protocol):
    """What every door does: parse its dialect into the canonical request, and speak its error envelope."""

    name: str  # "chat" | "messages" | "responses" | "embeddings"

    def parse(self, body: dict[str, Any], headers: Mapping[str, str]) -> CompletionInput:
        """Validates a body (raises InvalidRequest naming the field) into the canonical request."""
        ...

    def error_body(self, error: ApiError) -> tuple[int, dict[str, Any]]:
        """The status and body of an error in the dialect's own envelope."""
        ...


class Door(DoorCodec, Protocol):
    """A completion door: it renders a Completion, whole or as a stream (embeddings render vectors instead)."""

    def render(self, completion: Completion) -> dict[str, Any]: ...

    def stream_renderer(self, meta: StreamMeta) -> StreamRenderer: ...
