"""The canonical result of a run, and the router's facts as response headers (the same on every door)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from config.rendering import dumps
from providers.adapters.base import ChatResult
from providers.catalog import CatalogModel
from routing.pipeline.run import Charge, CompletionRun
from routing.pipeline.types import Completion


def completion_of(
    run: CompletionRun, model: CatalogModel, result: ChatResult, charge: Charge, *, cached: bool
) -> Completion:
    return Completion(
        request_id=run.request_id,
        model=model.model_id,
        provider=model.provider,
        content=result.content,
        tool_calls=result.tool_calls,
        finish_reason=result.finish_reason,
        usage=charge.usage,
        cost=charge.cost,
        estimated_cost=run.estimated_cost(model.model_id),
        cached=cached,
        created_at=run.created_at,
        latency_ms=run.elapsed_ms(),
        selection_mode=run.plan.mode,
        models_considered=run.plan.considered,
        attempts=[a.as_json() for a in run.attempts],
        budget_fitted=run.budget_fitted,
        max_tokens_applied=run.max_tokens_override if run.budget_fitted else None,
        raw=result.raw,
        door_params=run.inp.door_params,
    )


def router_headers(run: CompletionRun, model: CatalogModel, cost: Decimal | None) -> dict[str, str]:
    headers = {
        "X-Request-Id": run.request_id,
        "X-Router-Model": model.model_id,
        "X-Router-Provider": model.provider,
        "X-Router-Cache": run.cache_status,
        "X-Router-Overhead-Ms": f"{run.overhead_ms():.2f}",
        **run.rate_headers,
    }
    if cost is not None:
        headers["X-Router-Cost-Usd"] = dumps(cost).decode()
    if model.deprecation_date is not None and model.deprecation_date <= run.created_at.date():
        headers["Deprecation"] = (
            f"@{int(datetime.combine(model.deprecation_date, datetime.min.time()).timestamp())}"
        )
    return headers
