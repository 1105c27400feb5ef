"""Streaming: a vendor stream relayed through a door's renderer, logged and settled however it ends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from config.api_errors import ApiError, UpstreamError
from providers.adapters.base import ChatResult, ProviderError, StreamDelta, Usage
from providers.catalog import CatalogModel
from providers.tokens import count_text_tokens
from routing import health
from routing.pipeline.caching import log_and_store
from routing.pipeline.call import close_upstream
from routing.pipeline.idle import IdleTimer
from routing.pipeline.record import charge_for, log, log_in_background
from routing.pipeline.result import completion_of
from routing.pipeline.run import Charge, CompletionRun, Outcome
from routing.pipeline.types import Completion, StreamMeta, StreamRenderer

# Binds the opened stream to the renderer of the door it is answered through.
Body = Callable[[StreamRenderer], AsyncIterator[bytes]]


@dataclass
class OpenStream:
    """A stream whose first delta has arrived (so fallbacks are over) or a cache hit to replay."""

    headers: dict[str, str]
    meta: StreamMeta
    body: Body
    # Ends a stream whose client left before reading a byte of it: closes the upstream, logs and settles.
    abandon: Callable[[], Awaitable[None]] | None = None


class StreamState:
    """What the stream has said so far, in canonical terms: text, tool calls, finish, usage."""

    def __init__(self, run: CompletionRun, model: CatalogModel) -> None:
        self.run = run
        self.model = model
        self.text: list[str] = []
        self.finish_reason = ""
        self.usage: Usage | None = None
        self.tool_calls: dict[int, dict[str, Any]] = {}

    def absorb(self, delta: StreamDelta) -> None:
        if delta.content:
            self.text.append(delta.content)
        for call in delta.tool_calls or ():
            slot = self.tool_calls.setdefault(
                call.get("index", 0),
                {"id": call.get("id"), "type": "function", "function": {"name": "", "arguments": ""}},
            )
            function = call.get("function") or {}
            slot["function"]["name"] += function.get("name") or ""
            slot["function"]["arguments"] += function.get("arguments") or ""
        if delta.finish_reason:
            self.finish_reason = delta.finish_reason
        if delta.usage is not None:
            self.usage = delta.usage

    def final_usage(self) -> Usage:
        """The provider's usage, or, for a stream cut short, an estimate of what was generated."""
        if self.usage is not None:
            return self.usage
        generated = count_text_tokens("".join(self.text), self.model.model_id, self.model.provider)
        return Usage(prompt_tokens=self.run.prompt_tokens[self.model.model_id], completion_tokens=generated)

    def outcome(self, error: ApiError | None) -> Outcome:
        return Outcome(
            status="error" if error else "success",
            http_status=error.status if error else 200,
            model=self.model,
            charge=charge_for(self.run, self.model, self.final_usage()),
            content="".join(self.text),
            finish_reason=self.finish_reason,
            tool_calls=list(self.tool_calls.values()) or None,
            error=error,
        )

    def completion(self, charge: Charge) -> Completion:
        result = ChatResult(
            content="".join(self.text) or None,
            finish_reason=self.finish_reason or "stop",
            usage=charge.usage,
            tool_calls=list(self.tool_calls.values()) or None,
        )
        return completion_of(self.run, self.model, result, charge, cached=False)


def meta_for(run: CompletionRun, model: CatalogModel, *, native: bool) -> StreamMeta:
    return StreamMeta(
        request_id=run.request_id,
        model=model.model_id,
        provider=model.provider,
        created_at=run.created_at,
        prompt_tokens=run.prompt_tokens.get(model.model_id, 0),
        native=native,
        include_usage=run.inp.include_usage,
        door_params=run.inp.door_params,
    )


async def relay(
    run: CompletionRun,
    state: StreamState,
    upstream: AsyncIterator[StreamDelta],
    first: StreamDelta,
    renderer: StreamRenderer,
) -> AsyncIterator[bytes]:
    """Relays the upstream stream in the door's dialect; logs and settles when it ends, however it ends.

    The row is written before the final events, so a client that saw the end finds its request logged; a
    client that goes away cancels this generator, and the row is then written by a task of its own.
    """
    error: ApiError | None = None
    idle = IdleTimer(run.catalog.providers[state.model.provider].timeout_s)
    try:
        # What is ready together goes out as one write (one ASGI message, one send): the opening with the
        # first delta, each delta's events, the end's events.
        opening = renderer.start()
        state.absorb(first)
        if pieces := opening + renderer.delta(first):
            yield b"".join(pieces)
        while True:
            try:
                delta = await idle.next(upstream)
            except StopAsyncIteration:
                break
            state.absorb(delta)
            if pieces := renderer.delta(delta):
                yield b"".join(pieces)
    except (ProviderError, TimeoutError) as exc:
        message = str(exc) or "the provider stopped answering"
        error = UpstreamError(f"The stream broke off: {message}", code="stream_interrupted")
        run.attempts[-1].status = "error"
        run.attempts[-1].error = message
    except BaseException:
        # The client went away (cancellation) or the server is shutting down: charge what was generated.
        disconnected = ApiError(
            "The client disconnected before the stream ended", status=499, code="client_disconnected"
        )
        log_in_background(run, state.outcome(disconnected))
        await close_upstream(upstream)
        raise
    finally:
        idle.close()
    await close_upstream(upstream)
    outcome = state.outcome(error)
    if error is not None:
        await log(run, outcome)
        await health.provider_failed(state.model.provider)
        if pieces := renderer.fail(error):
            yield b"".join(pieces)
        return
    assert outcome.charge is not None
    completion = state.completion(outcome.charge)
    result = None
    if state.finish_reason and state.finish_reason != "content_filter":
        result = ChatResult(
            content=outcome.content,
            finish_reason=state.finish_reason,
            usage=outcome.charge.usage,
            tool_calls=completion.tool_calls,
        )
    # Both before the final events: a client that saw the end and asks again finds the row and gets the hit.
    await log_and_store(run, outcome, state.model, result, outcome.charge)
    if pieces := renderer.end(completion):
        yield b"".join(pieces)


async def replay(
    run: CompletionRun, model: CatalogModel, result: ChatResult, charge: Charge, renderer: StreamRenderer
) -> AsyncIterator[bytes]:
    """A cache hit told as a stream, in the door's dialect."""
    pieces = renderer.start()
    if result.content:
        pieces += renderer.delta(StreamDelta(content=result.content))
    if result.tool_calls:
        calls = [{"index": i, **call} for i, call in enumerate(result.tool_calls)]
        pieces += renderer.delta(StreamDelta(tool_calls=calls))
    pieces += renderer.delta(StreamDelta(finish_reason=result.finish_reason))
    pieces += renderer.end(completion_of(run, model, result, charge, cached=True))
    if pieces:
        yield b"".join(pieces)  # all of it at once: one write


async def abandon_stream(
    run: CompletionRun, state: StreamState, upstream: AsyncIterator[StreamDelta], first: StreamDelta
) -> None:
    state.absorb(first)  # charged for what the provider had generated, like a disconnect mid-stream
    await close_upstream(upstream)
    disconnected = ApiError(
        "The client disconnected before the stream began", status=499, code="client_disconnected"
    )
    await log(run, state.outcome(disconnected))
