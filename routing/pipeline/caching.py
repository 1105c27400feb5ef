"""The response cache as a stage: lookup after planning, a hit served at zero cost, a fresh answer stored."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from redis.exceptions import NoScriptError

from config.redis_clients import REDIS_ERRORS, get_redis
from providers.adapters.base import ChatResult, EmbeddingResult, Usage
from providers.catalog import CatalogModel
from providers.pricing import Cost
from providers.vectors import vector_from_base64, vector_to_base64
from routing import health
from routing.cache import CacheLookup, cache_key, cache_put, cache_put_queue, cache_scope
from routing.pipeline.limits import rate_settle, rate_settle_queue
from routing.pipeline.record import log
from routing.pipeline.run import ZERO, Charge, CompletionRun, Outcome
from routing.pipeline.types import AttemptRecord

# Embedding entries hold their vectors (2,048 inputs of 3,072 dimensions are 25 MB): above this, not cached.
MAX_EMBEDDING_ENTRY_BYTES = 8 * 1024 * 1024


def _embedding_entry(
    model: CatalogModel, result: EmbeddingResult, charge: Charge, request_id: str
) -> dict[str, Any]:
    return {
        "kind": "embedding",
        "model": model.model_id,
        "vectors": vector_to_base64(b"".join(result.vectors)),
        "sizes": result.sizes,
        "usage": [charge.usage.prompt_tokens],
        "usage_estimated": result.usage_estimated,
        "original_cost_usd": str(charge.cost.total),
        "original_request_id": request_id,
    }


def _entry(
    model: CatalogModel, result: ChatResult | EmbeddingResult, charge: Charge, request_id: str
) -> dict[str, Any]:
    if isinstance(result, EmbeddingResult):
        return _embedding_entry(model, result, charge, request_id)
    return {
        "model": model.model_id,
        "content": result.content,
        "tool_calls": result.tool_calls,
        "finish_reason": result.finish_reason,
        "usage": [
            result.usage.prompt_tokens,
            result.usage.completion_tokens,
            result.usage.cached_tokens,
            result.usage.reasoning_tokens,
        ],
        "raw": result.raw,
        "original_cost_usd": str(charge.cost.total),
        "original_request_id": request_id,
    }


def _key_for(run: CompletionRun, model_id: str) -> str:
    """Over what the provider is sent: a max_tokens lowered to fit the budget changes the answer.

    The door is part of the key: a native answer (an Anthropic message, a Responses object) is not a chat one.
    """
    scope = cache_scope(user_id=run.caller.user_id, cache_group=run.caller.cache_group)
    params = {
        **run.inp.cache_params(),
        "max_tokens": run.max_tokens_override or run.inp.max_tokens,
        "door": run.inp.door if run.inp.native is not None else "chat",
    }
    return cache_key(scope=scope, model_id=model_id, params=params)


async def log_and_store(
    run: CompletionRun,
    outcome: Outcome,
    model: CatalogModel,
    result: ChatResult | EmbeddingResult | None,
    charge: Charge,
) -> None:
    """An answered call's record (PostgreSQL) and its Redis writes side by side, so the answer waits for the
    slower round trip instead of both in turn. The Redis writes go in one round trip (they were three, ~60 µs
    of CPU each): the provider's health sample (circuit closed, latency), the cache entry when `result` is
    given, and the tokens counted against the caller's rate limits settled to the actual count.

    The Redis writes go in a task and the record in this one (gather made a task of each)."""
    storing = asyncio.ensure_future(_store(run, outcome, model, result, charge))
    try:
        await log(run, outcome, rates_settled=True)
    finally:
        await storing


async def _store(
    run: CompletionRun,
    outcome: Outcome,
    model: CatalogModel,
    result: ChatResult | EmbeddingResult | None,
    charge: Charge,
) -> None:
    """Stored under the model that answered: a fallback's answer must not serve asks for the first choice."""
    stored = _storable(run, model, result, charge)
    redis = get_redis()
    if redis is None:  # the embedded cache; health samples and rate limits live in Redis alone
        if stored is not None:
            await cache_put(*stored)
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            health.success_queue(pipe, model.provider, model.model_id, run.attempts[-1].latency_ms)
            if stored is not None:
                cache_put_queue(pipe, *stored)
            settling = rate_settle_queue(pipe, run, outcome)
            results = await pipe.execute(raise_on_error=False)
    except REDIS_ERRORS:
        return  # all best-effort: the answer stands without its sample, its entry or its settled tokens
    if settling and isinstance(results[-1], NoScriptError):
        await rate_settle(run, outcome)  # a restarted or flushed Redis: EVAL loads the script again


def _storable(
    run: CompletionRun, model: CatalogModel, result: ChatResult | EmbeddingResult | None, charge: Charge
) -> tuple[str, dict[str, Any]] | None:
    if result is None or not (run.inp.cache_write and run.cache_key):
        return None
    if (
        isinstance(result, EmbeddingResult)
        and sum(len(v) for v in result.vectors) > MAX_EMBEDDING_ENTRY_BYTES
    ):
        return None
    return _key_for(run, model.model_id), _entry(model, result, charge, run.request_id)


def cache_read_key(run: CompletionRun) -> str | None:
    """The key to look up; None when there is nothing to look up (no model planned, or a request that does not
    read the cache). The key is taken after the model is chosen, so optimized modes share entries with manual
    ones."""
    if not run.plan.ranked:
        return None
    run.cache_key = _key_for(run, run.plan.ranked[0].candidate.model_id)
    if not run.inp.cache_read:
        run.cache_status = "bypass"
        return None
    return run.cache_key


def cache_looked_up(run: CompletionRun, lookup: CacheLookup) -> dict[str, Any] | None:
    run.cache_status = lookup.status
    return lookup.entry if lookup.status == "hit" else None


def _cached_embeddings(entry: dict[str, Any]) -> EmbeddingResult:
    data = vector_from_base64(entry["vectors"])
    vectors, start = [], 0
    for size in entry["sizes"]:
        vectors.append(data[start : start + 4 * size])
        start += 4 * size
    return EmbeddingResult(
        vectors=vectors,
        usage=Usage(prompt_tokens=entry["usage"][0]),
        usage_estimated=entry["usage_estimated"],
    )


def _cached_result(entry: dict[str, Any]) -> ChatResult:
    prompt, completion, cached, reasoning = entry["usage"]
    return ChatResult(
        content=entry["content"],
        finish_reason=entry["finish_reason"],
        usage=Usage(prompt, completion, cached, reasoning),
        tool_calls=entry.get("tool_calls"),
        raw=entry.get("raw"),
    )


async def _log_hit(
    run: CompletionRun,
    model: CatalogModel,
    result: ChatResult | EmbeddingResult,
    usage: Usage,
    entry: dict[str, Any],
) -> Charge:
    """A hit costs nothing and reserves nothing, but is logged, with the money it saved."""
    zero = Charge(usage=usage, cost=Cost(ZERO, ZERO, ZERO), price_id=model.price_id)
    run.attempts.append(AttemptRecord(model.model_id, model.provider, "cache_hit", 0, 200))
    await log(run, Outcome.answered(model, result, zero, cache_savings=Decimal(entry["original_cost_usd"])))
    return zero


async def serve_cache_hit(
    run: CompletionRun, entry: dict[str, Any]
) -> tuple[CatalogModel, ChatResult, Charge]:
    model = run.model(entry["model"])
    result = _cached_result(entry)
    return model, result, await _log_hit(run, model, result, result.usage, entry)


async def serve_embedding_hit(
    run: CompletionRun, entry: dict[str, Any]
) -> tuple[CatalogModel, EmbeddingResult, Charge]:
    model = run.model(entry["model"])
    result = _cached_embeddings(entry)
    assert result.usage is not None
    return model, result, await _log_hit(run, model, result, result.usage, entry)
