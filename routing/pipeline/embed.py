"""The embeddings entry point: a completion's stages (plan, hold, call, record, cache) with vectors for an answer.

An embeddings request is a CompletionInput with `embedding` set: it is planned among embedding models only,
held at its worst case with its pending row before any call, retried and fallen back on like a chat call,
logged once with its attempts and charged at the price row it was planned on, and cached (same inputs,
model and dimensions). What differs is only what answers: vectors instead of a message, and for vendors that
count nothing (Gemini), usage estimated with our tokenizer and marked so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from config.api_errors import InvalidRequest
from providers.adapters import get_embedding_adapter
from providers.adapters.base import EmbeddingResult, Usage
from providers.catalog import CatalogModel
from routing import engine
from routing.pipeline.admission import cache_lookup_and_admit
from routing.pipeline.caching import log_and_store, serve_embedding_hit
from routing.pipeline.call import embed_model, first_answer
from routing.pipeline.limits import rate_headers_on_errors
from routing.pipeline.plan import completion_plan
from routing.pipeline.record import charge_for, unless_abandoned
from routing.pipeline.result import router_headers
from routing.pipeline.run import Charge, CompletionRun, Outcome
from routing.pipeline.types import Caller, CompletionInput, Embeddings


@dataclass
class EmbeddingsAnswered:
    embeddings: Embeddings
    headers: dict[str, str]


async def embeddings_create(*, caller: Caller, inp: CompletionInput, request_id: str) -> EmbeddingsAnswered:
    """The vectors of every input, in order. Raises ApiError (already logged when a provider was involved).

    Like completion_create it runs to the end even when the client disconnects: the call is paid for.
    """
    assert inp.embedding is not None
    return await unless_abandoned(_embeddings_create(caller=caller, inp=inp, request_id=request_id))


async def _embeddings_create(*, caller: Caller, inp: CompletionInput, request_id: str) -> EmbeddingsAnswered:
    run = await completion_plan(caller=caller, inp=inp, request_id=request_id)
    _keep_models_taking_the_input(run)
    entry = await cache_lookup_and_admit(run)  # requests and tokens per minute, as on every door
    with rate_headers_on_errors(run):
        return await _answer(run, entry)


async def _answer(run: CompletionRun, entry: dict[str, Any] | None) -> EmbeddingsAnswered:
    if entry is not None:
        model, result, charge = await serve_embedding_hit(run, entry)
        return _answered(run, model, result, charge, cached=True)

    model, result = await first_answer(run, embed_model)
    result = _with_usage(run, model, result)
    assert result.usage is not None
    charge = charge_for(run, model, result.usage)
    await log_and_store(run, Outcome.answered(model, result, charge), model, result, charge)
    return _answered(run, model, result, charge, cached=False)


def _takes_token_arrays(provider: str) -> bool:
    adapter = get_embedding_adapter(provider)
    return adapter is not None and adapter.takes_token_arrays


def _keep_models_taking_the_input(run: CompletionRun) -> None:
    """Token arrays go to OpenAI as they are; a vendor that takes text only (Gemini) is a 400 when it was asked
    for by name and is skipped as a fallback or an optimized choice. Before any hold: nothing is written."""
    embedding = run.inp.embedding
    assert embedding is not None
    if not embedding.token_arrays:
        return
    ranked = run.plan.ranked
    first = ranked[0].candidate
    kept = tuple(r for r in ranked if _takes_token_arrays(r.candidate.provider))
    if not kept or (run.plan.mode == engine.MODE_MANUAL and kept[0] is not ranked[0]):
        raise InvalidRequest(
            f"Model '{first.model_id}' ({first.provider}) takes text only: send the input as strings, "
            "not token arrays",
            param="input",
            code="invalid_value",
        )
    run.plan = replace(run.plan, ranked=kept)


def _with_usage(run: CompletionRun, model: CatalogModel, result: EmbeddingResult) -> EmbeddingResult:
    """The vendor's counts, or (Gemini reports none) the plan's own estimate of the inputs, marked estimated."""
    if result.usage is not None:
        return result
    estimate = run.prompt_tokens.get(model.model_id, 0)
    return replace(result, usage=Usage(prompt_tokens=estimate), usage_estimated=True)


def _answered(
    run: CompletionRun, model: CatalogModel, result: EmbeddingResult, charge: Charge, *, cached: bool
) -> EmbeddingsAnswered:
    embeddings = Embeddings(
        request_id=run.request_id,
        model=model.model_id,
        provider=model.provider,
        vectors=result.vectors,
        usage=charge.usage,
        usage_estimated=result.usage_estimated,
        cost=charge.cost,
        cached=cached,
        created_at=run.created_at,
        latency_ms=run.elapsed_ms(),
        attempts=[a.as_json() for a in run.attempts],
    )
    headers = router_headers(run, model, charge.cost.total)  # a hit's charge is zero
    if result.usage_estimated:
        headers["X-Router-Usage-Estimated"] = "true"
    return EmbeddingsAnswered(embeddings, headers)
