"""The response cache as a stage: lookup after planning, a hit served at zero cost, a fresh answer stored."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from providers.adapters.base import ChatResult, Usage
from providers.catalog import CatalogModel
from providers.pricing import Cost
from routing.cache import cache_get, cache_key, cache_put, cache_scope
from routing.pipeline.record import log
from routing.pipeline.run import ZERO, Charge, CompletionRun, Outcome
from routing.pipeline.types import AttemptRecord


def _entry(model: CatalogModel, result: ChatResult, charge: Charge, request_id: str) -> dict[str, Any]:
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


async def cache_store(run: CompletionRun, model: CatalogModel, result: ChatResult, charge: Charge) -> None:
    """Stored under the model that answered: a fallback's answer must not serve asks for the first choice."""
    if run.inp.cache_write and run.cache_key:
        await cache_put(_key_for(run, model.model_id), _entry(model, result, charge, run.request_id))


async def cache_lookup(run: CompletionRun) -> dict[str, Any] | None:
    """The key is taken after the model is chosen, so optimized modes share entries with manual ones."""
    if not run.plan.ranked:
        return None
    run.cache_key = _key_for(run, run.plan.ranked[0].candidate.model_id)
    if not run.inp.cache_read:
        run.cache_status = "bypass"
        return None
    lookup = await cache_get(run.cache_key)
    run.cache_status = lookup.status
    return lookup.entry if lookup.status == "hit" else None


def _cached_result(entry: dict[str, Any]) -> ChatResult:
    prompt, completion, cached, reasoning = entry["usage"]
    return ChatResult(
        content=entry["content"],
        finish_reason=entry["finish_reason"],
        usage=Usage(prompt, completion, cached, reasoning),
        tool_calls=entry.get("tool_calls"),
        raw=entry.get("raw"),
    )


async def serve_cache_hit(
    run: CompletionRun, entry: dict[str, Any]
) -> tuple[CatalogModel, ChatResult, Charge]:
    """A hit costs nothing and reserves nothing, but is logged, with the money it saved."""
    model = run.model(entry["model"])
    result = _cached_result(entry)
    zero = Charge(usage=result.usage, cost=Cost(ZERO, ZERO, ZERO), price_id=model.price_id)
    run.attempts.append(AttemptRecord(model.model_id, model.provider, "cache_hit", 0, 200))
    await log(run, Outcome.answered(model, result, zero, cache_savings=Decimal(entry["original_cost_usd"])))
    return model, result, zero
