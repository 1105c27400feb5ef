"""Server-sent events: decoding lines into events, and driving a vendor's decoder from events to StreamDeltas."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from providers.adapters.base import ProviderError, StreamDelta, Usage
from providers.adapters.redaction import redact

RAW_EVENT = "__raw__"  # lines that are not SSE fields, e.g. a bare JSON error body in a Gemini stream


@dataclass(slots=True)
class SSEEvent:
    event: str  # "" when the server sent no `event:` line
    data: str


async def iter_sse(lines: AsyncIterator[str]) -> AsyncIterator[SSEEvent]:
    """Decode SSE from lines (any of \\n, \\r\\n, \\r already split off). Comments such as `: keep-alive` are
    skipped; multiple `data:` lines join with \\n; a trailing event without its blank line is still delivered.
    """
    event = ""
    data: list[str] = []
    raw: list[str] = []
    async for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            if raw:
                yield SSEEvent(RAW_EVENT, "\n".join(raw))
                raw = []
            if data:
                yield SSEEvent(event, "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name not in ("id", "retry"):
            raw.append(line)
    if raw:
        yield SSEEvent(RAW_EVENT, "\n".join(raw))
    if data:
        yield SSEEvent(event, "\n".join(data))


def loads_event(provider: str, data: str) -> Any:
    """One event's JSON: orjson (a stream is dozens of events), the stdlib for what orjson refuses (NaN)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ProviderError(
            f"{provider}: malformed stream event: {redact(data, limit=200)!r}",
            retryable=True,
            kind="protocol",
            extra={"provider": provider, "category": "protocol"},
        ) from exc


class StreamDecoder(Protocol):
    """Turns one vendor's SSE events into StreamDeltas. `feed` may raise ProviderError for error events."""

    done: bool  # the vendor's explicit end marker was seen: stop reading
    usage: Usage | None

    def feed(self, event: SSEEvent) -> Iterable[StreamDelta]: ...

    def close(self) -> Iterable[StreamDelta]:
        """At the end of input: the final deltas (finish, then usage), or ProviderError if incomplete."""
        ...


async def decode_stream(
    events: AsyncGenerator[SSEEvent, None], decoder: StreamDecoder
) -> AsyncIterator[StreamDelta]:
    """Drive a decoder over an event stream. A failure after deltas went out is marked `partial` in `extra`,
    with the usage known so far, so the caller can record cost and knows not to retry transparently."""
    emitted = False
    try:
        async with aclosing(events) as stream:
            async for event in stream:
                for delta in decoder.feed(event):
                    emitted = True
                    yield delta
                if decoder.done:
                    break
        for delta in decoder.close():
            yield delta
    except ProviderError as exc:
        exc.extra["partial"] = emitted
        if decoder.usage is not None:
            exc.extra.setdefault("usage", decoder.usage)
        raise
