"""A/B comparisons: one gateway request per model, each a Celery task of one group, gathered in request order."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.api_errors import InvalidRequest, NotFound
from config.db import run_orm
from providers.catalog import catalog_get, wrong_kind_message
from routing.models import OPEN_STATUSES, Comparison, ComparisonResult, FanoutRow
from routing.pipeline.types import Caller, CompletionInput
from routing.services import dispatch
from routing.services.fanout import (
    Work,
    fanout_request_id,
    iso,
    parent_done_notify,
    parent_wait,
    row_json,
    row_run,
    rows_requeue_stale,
)

MIN_MODELS = 2
MAX_MODELS = 10
ZERO = Decimal(0)


def _resolve_models(models: list[str]) -> list[tuple[str, str]]:
    """(model id, provider) per requested name, aliases resolved; 400 for unknown, inactive or repeated."""
    if not MIN_MODELS <= len(models) <= MAX_MODELS:
        raise InvalidRequest(
            f"models must list {MIN_MODELS} to {MAX_MODELS} distinct models, got {len(models)}",
            param="models",
            code="invalid_value",
        )
    catalog = catalog_get()
    resolved: list[tuple[str, str]] = []
    for index, name in enumerate(models):
        found = catalog.by_name(name)
        if found is None or not (found.active and found.provider_active):
            raise InvalidRequest(
                f"Model '{name}' not found or inactive", param=f"models[{index}]", code="model_not_found"
            )
        if found.is_embedding:
            raise InvalidRequest(
                wrong_kind_message(name, found.kind, "chat"), param=f"models[{index}]", code="model_not_found"
            )
        if any(model_id == found.model_id for model_id, _ in resolved):
            raise InvalidRequest(
                f"Model '{name}' is listed more than once (as '{found.model_id}')",
                param=f"models[{index}]",
                code="duplicate_model",
            )
        resolved.append((found.model_id, found.provider))
    return resolved


def comparison_new_id() -> str:
    return "cmp_" + secrets.token_hex(12)


def comparison_request_id(comparison_id: str, index: int) -> str:
    """The log row id the request of its index-th model runs under."""
    return fanout_request_id(comparison_id, f"m{index}")


def _input(messages: list[dict[str, Any]], model: str, params: dict[str, Any]) -> CompletionInput:
    return CompletionInput(
        messages=messages,
        model=model,
        temperature=params.get("temperature"),
        max_tokens=params.get("max_tokens"),
        top_p=params.get("top_p"),
    )


def comparison_inputs(
    *,
    models: list[str],
    messages: list[dict[str, Any]],
    temperature: float | None = None,
    max_tokens: int | None = None,
    top_p: float | None = None,
) -> list[CompletionInput]:
    """The request each model will run, before the comparison exists (to count them against rate limits)."""
    params = {"temperature": temperature, "max_tokens": max_tokens, "top_p": top_p}
    return [_input(messages, model, params) for model in models]


def _enqueue(result_ids: list[int]) -> None:
    """Sends one task per model. A broker that can't take them fails the comparison as one, before anything ran
    or was charged: its rows end as errors (never run later behind the client's back) and the caller gets 503."""
    try:
        dispatch.tasks_send_together(dispatch.COMPARISON_MODEL_RUN, [(pk,) for pk in result_ids])
    except dispatch.BrokerUnavailable as exc:
        results = ComparisonResult.objects.filter(pk__in=result_ids, status=FanoutRow.Status.QUEUED)
        comparison_ids = set(results.values_list("comparison_id", flat=True))
        results.update(
            status=FanoutRow.Status.ERROR,
            error_code=exc.code,
            error_message=exc.message,
            completed_at=timezone.now(),
        )
        for comparison_id in comparison_ids:
            _complete_if_done(comparison_id)
        raise


def comparison_start(
    *,
    user_id: int,
    models: list[str],
    messages: list[dict[str, Any]],
    temperature: float | None = None,
    max_tokens: int | None = None,
    top_p: float | None = None,
    api_key_id: int | None = None,
    cache_group: str = "",
    comparison_id: str | None = None,
) -> Comparison:
    """Validates the models (400 on unknown, duplicate, fewer than 2 or more than 10), stores the comparison
    (under `comparison_id` when its requests were already counted under its ids) and, once committed, runs one
    task per model."""
    if not messages:
        raise InvalidRequest("messages must not be empty", param="messages", code="invalid_value")
    resolved = _resolve_models(models)
    now = timezone.now()
    with transaction.atomic():
        comparison = Comparison.objects.create(
            id=comparison_id or comparison_new_id(),
            user_id=user_id,
            models_requested=[model_id for model_id, _ in resolved],
            params={
                "temperature": temperature,
                "max_tokens": max_tokens,
                "top_p": top_p,
                "models_as_sent": models,
            },
            messages=messages,
            status="running",
            api_key_id=api_key_id,
            cache_group=cache_group,
            created_at=now,
        )
        results = ComparisonResult.objects.bulk_create(
            ComparisonResult(
                comparison=comparison,
                index=index,
                model=model_id,
                provider=provider,
                status=FanoutRow.Status.QUEUED,
                queued_at=now,
            )
            for index, (model_id, provider) in enumerate(resolved)
        )
        ids = [result.pk for result in results]
        transaction.on_commit(lambda: _enqueue(ids))
    return comparison


# --------------------------------------------------------------------------------------------- running


def _work_for(result: ComparisonResult) -> Work:
    comparison = result.comparison
    params = comparison.params
    inp = _input(comparison.messages, result.model, params)
    inp.comparison_id = comparison.id
    inp.idempotency_key = f"comparison_result:{result.pk}"
    inp.rate_counted = True  # with the comparison, by the view that admitted it
    return Work(
        caller=Caller(
            user_id=comparison.user_id,
            api_key_id=comparison.api_key_id,
            cache_group=comparison.cache_group,
            team_id=comparison.api_key.team_id if comparison.api_key is not None else None,
        ),
        inp=inp,
        request_id=comparison_request_id(comparison.id, result.index),
    )


def _complete_if_done(comparison_id: str) -> None:
    if ComparisonResult.objects.filter(comparison_id=comparison_id, status__in=OPEN_STATUSES).exists():
        return
    completed = Comparison.objects.filter(pk=comparison_id, status="running").update(
        status="completed", completed_at=timezone.now()
    )
    if completed:
        parent_done_notify(comparison_id)


def comparison_model_run(*, result_id: int) -> None:
    """Runs one compared model's request (idempotent: a redelivered task never runs or charges it twice)."""
    result = ComparisonResult.objects.select_related("comparison__api_key").filter(pk=result_id).first()
    if result is None:
        return
    row_run(
        model=ComparisonResult,
        pk=result_id,
        work_for=lambda _row: _work_for(result),
        claimed=lambda _row: None,
    )
    _complete_if_done(
        result.comparison_id
    )  # idempotent; also repairs a delivery that died right after the row


def comparisons_resume() -> int:
    """Runs again the models of comparisons whose worker died; completes comparisons left unmarked."""
    now = timezone.now()
    ids = rows_requeue_stale(ComparisonResult, now=now, comparison__status="running")
    if ids:
        transaction.on_commit(lambda: _enqueue(ids))
    for comparison_id in (
        Comparison.objects.filter(status="running")
        .exclude(results__status__in=OPEN_STATUSES)
        .values_list("pk", flat=True)
    ):
        _complete_if_done(comparison_id)
    return len(ids)


# --------------------------------------------------------------------------------------------- reading


def comparison_get(*, user_id: int, comparison_id: str) -> dict[str, Any]:
    """The comparison as the API shows it; 404 for an unknown id or another user's.

    `results` follow the requested order; a model still running shows `"status": "pending"` (only seen when
    the caller stopped waiting, or polls), a failed one `"error"` with its message, never a 500.
    """
    comparison = Comparison.objects.filter(pk=comparison_id, user_id=user_id).first()
    if comparison is None:
        raise NotFound(f"Comparison '{comparison_id}' not found")
    results = list(comparison.results.select_related("request").order_by("index"))
    rows = [{"model": r.model, "provider": r.provider, **row_json(r, r.request)} for r in results]
    successes = [row for row in rows if row["status"] == "success"]
    total = sum((r.request.total_cost_usd for r in results if r.request is not None), ZERO)
    cheapest = min(successes, key=lambda row: row["usage"]["total_cost_usd"], default=None)
    fastest = min(successes, key=lambda row: row["latency_ms"], default=None)
    return {
        "comparison_id": comparison.id,
        "object": "chat.comparison",
        "status": comparison.status,
        "models": comparison.models_requested,
        "results": rows,
        "total_cost_usd": total,
        "created_at": iso(comparison.created_at),
        "completed_at": iso(comparison.completed_at),
        "summary": {
            "cheapest": cheapest["model"] if cheapest else None,
            "fastest": fastest["model"] if fastest else None,
            "successful": len(successes),
            "failed": sum(1 for row in rows if row["status"] == "error"),
        },
    }


async def comparison_wait(*, comparison_id: str, timeout_s: float | None = None) -> bool:
    """Waits without blocking the event loop until every model answered (True) or the timeout passed."""

    async def done() -> bool:
        return bool(
            await run_orm(lambda: Comparison.objects.filter(pk=comparison_id, status="completed").exists())
        )

    timeout = settings.ROUTER_COMPARE_TIMEOUT_S if timeout_s is None else timeout_s
    return await parent_wait(parent_id=comparison_id, is_done=done, timeout_s=timeout)
