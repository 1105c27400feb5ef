"""Native pass-through: the client's own vendor-dialect body goes out, the vendor's own bytes come back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from providers.adapters.base import ChatRequest, StreamDelta, Usage
from providers.adapters.sse import RAW_EVENT, SSEEvent, StreamDecoder

# The gateway authenticates upstream with its own key and encodes the body itself: a client's value for
# these must never reach the vendor, whatever the door chose to forward.
PROTECTED_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "x-goog-api-key", "content-type", "content-length", "host"}
)


def native_body(
    request: ChatRequest, *, max_tokens_field: str, stream: bool, default_max_tokens: int | None = None
) -> dict[str, Any]:
    """The client's body with the upstream model, the stream flag the call needs, and the router's output cap.

    `request.max_tokens` is the router's last word (it may have clamped the client's value to the model's
    limit or the budget), so a larger or missing value in the body is replaced by it.
    """
    body = dict(request.native or {})
    body["model"] = request.model
    if stream:
        body["stream"] = True
    elif "stream" in body:
        body["stream"] = False
    asked = body.get(max_tokens_field)
    cap = request.max_tokens
    if cap is not None and not (isinstance(asked, int) and not isinstance(asked, bool) and asked <= cap):
        body[max_tokens_field] = cap
    elif asked is None and default_max_tokens is not None:
        body[max_tokens_field] = default_max_tokens
    return body


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The client headers a door forwards (anthropic-beta …), lower-cased, without the protected ones."""
    return {name.lower(): value for name, value in headers.items() if name.lower() not in PROTECTED_HEADERS}


def sse_bytes(event: SSEEvent) -> bytes:
    """One event framed again as the vendor sent it (a multi-line data field keeps one `data:` per line)."""
    head = f"event: {event.event}\n" if event.event else ""
    data = "".join(f"data: {line}\n" for line in event.data.split("\n"))
    return f"{head}{data}\n".encode()


class PassThroughDecoder:
    """Wraps a vendor decoder so that each event's bytes ride on its first canonical delta.

    An event with no canonical meaning (ping, content_block_stop …) still reaches the client: it gets a
    delta of its own that carries only `raw`. Error events are not passed on: the inner decoder raises, and
    the door renders the failure in its dialect, as for any other upstream failure.
    """

    def __init__(self, inner: StreamDecoder) -> None:
        self.inner = inner
        self.done = False
        self.usage: Usage | None = None

    def feed(self, event: SSEEvent) -> Iterable[StreamDelta]:
        try:
            deltas = list(self.inner.feed(event))
        finally:
            self._sync()
        if event.event == RAW_EVENT:
            return deltas  # not an SSE event: nothing a client could parse
        raw = sse_bytes(event)
        if not deltas:
            return [StreamDelta(raw=raw)]
        deltas[0].raw = raw
        return deltas

    def close(self) -> Iterable[StreamDelta]:
        try:
            return list(self.inner.close())
        finally:
            self._sync()

    def _sync(self) -> None:
        # decode_stream reads these after every event and on failure (for the usage of a partial stream).
        self.done = self.inner.done
        self.usage = self.inner.usage
