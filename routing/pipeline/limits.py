"""Rate limits as a stage: a planned request admitted against its caller's requests and tokens per minute, its
x-ratelimit headers on whatever it answers, and its tokens settled to the actual count once recorded.

The seam is right after planning (and the cache lookup): the first time the token estimate is known, the same
for every door, before anything is held or sent. A fan-out (compare, batch) is admitted whole by its view with
one estimate per item (`rate_admit_fanout`); its items then only settle.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence

from redis.asyncio.client import Pipeline

from config.api_errors import ApiError
from routing.pipeline.plan import completion_plan
from routing.pipeline.run import CompletionRun, Outcome
from routing.pipeline.types import Caller, CompletionInput
from routing.ratelimit import (
    Admitted,
    Limit,
    counted_keys,
    rate_limit_check,
    rate_limit_settle,
    rate_limit_settle_queue,
)


def tokens_estimate(run: CompletionRun) -> int:
    """What the request counts against tokens per minute until settled: the prompt's bound (as its hold) plus
    the max_tokens it will be sent, else the model's max output, for the model planned first."""
    if not run.plan.ranked:
        return 0
    model = run.model(run.plan.ranked[0].candidate.model_id)
    output = run.max_tokens_override or run.inp.max_tokens or model.max_output_tokens
    return run.held_prompt(model) + min(output, model.max_output_tokens)


async def rate_admit(run: CompletionRun, *, cached: bool) -> None:
    """Admits a request that `rate_admits` against every limit of its caller, or raises 429 counting nothing.
    A cache hit counts as a request of no tokens (no provider processes any)."""
    tokens = 0 if cached else tokens_estimate(run)
    rate_admitted(
        run, await rate_limit_check(run.caller.rate_limits, tokens=(tokens,), members=(run.request_id,))
    )


def rate_admits(run: CompletionRun) -> bool:
    """Whether the request is to be admitted against limits (a fan-out item was, with its parent)."""
    if run.inp.rate_counted:  # counted under its request id when its parent was admitted: to settle only
        run.rate_keys = counted_keys(key_id=run.caller.api_key_id, team_id=run.caller.team_id)
        return False
    return bool(run.caller.rate_limits)


def rate_admitted(run: CompletionRun, admitted: Admitted | None) -> None:
    """What the admission counted, to settle once the outcome is known, and the headers it answers with."""
    if admitted is not None:
        run.rate_keys = admitted.keys
        run.rate_tokens = admitted.tokens[0]
        run.rate_headers = admitted.headers


@contextlib.contextmanager
def rate_headers_on_errors(run: CompletionRun) -> Iterator[None]:
    """An error after admission (402, 502, …) still tells the client where its limits stand."""
    try:
        yield
    except ApiError as exc:
        exc.headers = {**run.rate_headers, **exc.headers}
        raise


def _actual_tokens(run: CompletionRun, outcome: Outcome) -> int | None:
    """What to settle the counted estimate to; None when there is nothing to settle."""
    if not run.rate_keys or outcome.charge is None:
        return None
    actual = 0 if outcome.cached else outcome.charge.usage.total_tokens
    return None if actual == run.rate_tokens else actual


async def rate_settle(run: CompletionRun, outcome: Outcome) -> None:
    """The counted estimate becomes the tokens actually used, in the window where it was counted. Only when the
    outcome knows them (a failure without usage keeps its estimate); best effort, never failing the request."""
    actual = _actual_tokens(run, outcome)
    if actual is not None:
        await rate_limit_settle(keys=run.rate_keys, member=run.request_id, tokens=actual)


def rate_settle_queue(pipe: Pipeline, run: CompletionRun, outcome: Outcome) -> bool:
    """rate_settle queued on a caller's Redis pipeline; whether anything was (then as the last command)."""
    actual = _actual_tokens(run, outcome)
    if actual is not None:
        rate_limit_settle_queue(pipe, keys=run.rate_keys, member=run.request_id, tokens=actual)
    return actual is not None


async def tokens_planned(*, caller: Caller, inp: CompletionInput) -> int:
    """A request's token estimate as the pipeline would count it, planned now; 0 for one that won't plan (it
    will be refused with 400 before anything is sent)."""
    try:
        run = await completion_plan(caller=caller, inp=inp, request_id="")
    except ApiError:
        return 0
    return tokens_estimate(run)


async def rate_admit_fanout(
    *, limits: Sequence[Limit], caller: Caller, inputs: Sequence[CompletionInput], request_ids: Sequence[str]
) -> Admitted | None:
    """Admits a fan-out as len(inputs) requests with one estimate each (under the request ids its items will
    run with), all or none: 429 counting nothing when they don't all fit."""
    if not limits:
        return None
    if any(limit.tpm for limit in limits):
        tokens = list(await asyncio.gather(*(tokens_planned(caller=caller, inp=inp) for inp in inputs)))
    else:
        tokens = [0] * len(inputs)  # settled to the actual counts all the same
    return await rate_limit_check(limits, requests=len(inputs), tokens=tokens, members=request_ids)
