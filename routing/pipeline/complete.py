"""The two entry points every door calls: a whole answer, or a stream opened once its first delta arrived."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from config.rendering import dumps
from routing.pipeline.admission import cache_lookup_and_admit
from routing.pipeline.caching import log_and_store, serve_cache_hit
from routing.pipeline.call import call_model, first_answer, open_model_stream
from routing.pipeline.limits import rate_headers_on_errors
from routing.pipeline.plan import completion_plan
from routing.pipeline.record import charge_for, keep, unless_abandoned
from routing.pipeline.result import completion_of, router_headers
from routing.pipeline.run import ZERO, CompletionRun, Outcome
from routing.pipeline.stream import OpenStream, StreamState, abandon_stream, meta_for, relay, replay
from routing.pipeline.types import Caller, Completion, CompletionInput, StreamRenderer


@dataclass
class Answered:
    completion: Completion
    headers: dict[str, str]


async def completion_create(*, caller: Caller, inp: CompletionInput, request_id: str) -> Answered:
    """A non-streaming completion. Raises ApiError (already logged when a provider was involved).

    It runs to the end even when the client disconnects (see record.unless_abandoned).
    """
    return await unless_abandoned(_completion_create(caller=caller, inp=inp, request_id=request_id))


async def _completion_create(*, caller: Caller, inp: CompletionInput, request_id: str) -> Answered:
    run = await completion_plan(caller=caller, inp=inp, request_id=request_id)
    entry = await cache_lookup_and_admit(run)
    with rate_headers_on_errors(run):
        return await _answer(run, entry)


async def _answer(run: CompletionRun, entry: dict[str, Any] | None) -> Answered:
    if entry is not None:
        model, result, charge = await serve_cache_hit(run, entry)
        completion = completion_of(run, model, result, charge, cached=True)
        return Answered(completion, router_headers(run, model, ZERO))

    model, outcome = await first_answer(run, call_model)
    charge = charge_for(run, model, outcome.usage)
    cacheable = outcome if outcome.finish_reason != "content_filter" else None
    await log_and_store(run, Outcome.answered(model, outcome, charge), model, cacheable, charge)
    completion = completion_of(run, model, outcome, charge, cached=False)
    return Answered(completion, router_headers(run, model, charge.cost.total))


async def completion_stream_open(*, caller: Caller, inp: CompletionInput, request_id: str) -> OpenStream:
    """Opens a streaming completion. Errors before the first byte raise ApiError like non-streaming ones.

    A client that goes away before the stream opens does not cut the opening short (reservations and
    attempts in flight would be lost); the stream it opened is then ended as a disconnect.
    """
    task = asyncio.ensure_future(_completion_stream_open(caller=caller, inp=inp, request_id=request_id))
    keep(task)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_abandon_opened)
        raise


def _abandon_opened(task: asyncio.Task[OpenStream]) -> None:
    if task.cancelled() or task.exception() is not None:
        return
    opened = task.result()
    if opened.abandon is not None:
        keep(asyncio.ensure_future(opened.abandon()))


async def _completion_stream_open(*, caller: Caller, inp: CompletionInput, request_id: str) -> OpenStream:
    run = await completion_plan(caller=caller, inp=inp, request_id=request_id)
    entry = await cache_lookup_and_admit(run)
    with rate_headers_on_errors(run):
        return await _open(run, entry)


async def _open(run: CompletionRun, entry: dict[str, Any] | None) -> OpenStream:
    if entry is not None:
        model, result, charge = await serve_cache_hit(run, entry)

        def replayed(renderer: StreamRenderer) -> AsyncIterator[bytes]:
            return replay(run, model, result, charge, renderer)

        meta = meta_for(run, model, native=False)
        return OpenStream(headers=router_headers(run, model, ZERO), meta=meta, body=replayed)

    model, (upstream, first) = await first_answer(run, open_model_stream)
    state = StreamState(run, model)
    headers = router_headers(run, model, None)
    headers["X-Router-Cost-Usd"] = dumps(run.estimated_cost(model.model_id)).decode()
    headers["X-Router-Cost-Estimated"] = "true"
    return OpenStream(
        headers=headers,
        meta=meta_for(run, model, native=run.is_native(model)),
        body=functools.partial(relay, run, state, upstream, first),
        abandon=functools.partial(abandon_stream, run, state, upstream, first),
    )


__all__ = ["Answered", "CompletionRun", "OpenStream", "completion_create", "completion_stream_open"]
