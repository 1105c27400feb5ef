"""Pricing and recording: the answer's cost, and one log row (with its attempts) settled with the budget.

Every request that reaches a provider ends in exactly one GatewayRequest row (plus one Attempt row per
provider call), written in the same transaction that settles its budget reservation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from django.utils import timezone

from config.api_errors import ApiError
from config.db import unsaved
from providers.adapters.base import Usage
from providers.catalog import CatalogModel
from providers.pricing import cost_of_usage
from providers.tokens import decode_tokens
from routing import metrics
from routing.access import access_expect_note, access_note
from routing.models import Attempt, GatewayRequest
from routing.pipeline.journal import JournalEntry
from routing.pipeline.lease import lease_drop
from routing.pipeline.limits import rate_settle
from routing.pipeline.run import ZERO, Charge, CompletionRun, Outcome
from routing.pipeline.usage_check import anomalies_observed, usage_checked
from routing.pipeline.writes import write_outcome

T = TypeVar("T")
_background: set[asyncio.Task[Any]] = set()


def charge_for(run: CompletionRun, model: CatalogModel, usage: Usage) -> Charge:
    """The provider's usage, checked against what the request allowed, priced at the planned price row."""
    assert model.rates is not None
    max_output = run.max_tokens_override or run.inp.max_tokens or model.max_output_tokens
    checked = usage_checked(
        usage, max_prompt=run.prompt_cap(model), max_output=min(max_output, model.max_output_tokens)
    )
    if checked.anomalies:
        anomalies_observed(
            request_id=run.request_id,
            provider=model.provider,
            model=model.model_id,
            anomalies=checked.anomalies,
        )
    usage = checked.usage
    cost = cost_of_usage(model.rates, usage)
    return Charge(usage=usage, cost=cost, price_id=model.price_id, anomalies=checked.anomalies)


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
                )
    return ""


def _logged_prompt(run: CompletionRun, model: CatalogModel | None) -> tuple[list[Any], str]:
    """(messages, searchable prompt text) of the row. Embeddings log their inputs as sent in `messages` (a list
    of texts or token arrays) and the texts, one a line, as the prompt: token arrays decoded where the model's
    encoding is known."""
    embedding = run.inp.embedding
    if embedding is None:
        return run.inp.messages, _prompt_text(run.inp.messages)
    if run.logged_prompt is None:
        texts = []
        for item in embedding.inputs:
            if isinstance(item, str):
                texts.append(item)
            else:
                decoded = decode_tokens(item, model.model_id, model.provider) if model is not None else None
                texts.append(decoded if decoded is not None else f"[{len(item)} tokens]")
        run.logged_prompt = _storable("\n".join(texts))
    return list(embedding.inputs), run.logged_prompt


def _storable(text: str) -> str:
    """Text PostgreSQL can store: a NUL from a provider would fail the log write after the call was paid for."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _params(run: CompletionRun, outcome: Outcome | None = None) -> dict[str, Any]:
    # The prompt itself lives in messages and prompt_text (which retention clears), never in params.
    params = {
        k: v
        for k, v in run.inp.cache_params().items()
        if k not in ("messages", "native", "input") and v is not None
    }
    if run.inp.door_params:
        params["door"] = run.inp.door_params
    if outcome is not None and outcome.embedding is not None:
        params["embedding"] = outcome.embedding
    return params


def _log_rows(run: CompletionRun, outcome: Outcome) -> tuple[GatewayRequest, list[Attempt], str | None]:
    """The log row and its attempts (unsaved), and which model's reservation to settle (the one that answered)."""
    charge = outcome.charge
    model = outcome.model
    total = charge.cost.total if charge else ZERO
    answered = model.model_id if (model is not None and charge is not None) else None
    finished = timezone.now()
    run.finished_ms = run.elapsed_ms()
    messages, prompt_text = _logged_prompt(run, model)
    row = unsaved(
        GatewayRequest,
        id=run.request_id,
        user_id=run.caller.user_id,
        api_key_id=run.caller.api_key_id,
        client_request_id=run.inp.client_request_id,
        created_at=run.created_at,
        completed_at=finished,
        requested_model=run.inp.model or "",
        model=model.model_id if model else (run.inp.model or ""),
        provider=model.provider if model else "",
        catalog_model_id=model.pk if model else None,
        price_id=charge.price_id if charge else None,
        door=run.inp.door,
        messages=messages,
        prompt_text=prompt_text,
        response_text=_storable(outcome.content),
        tool_calls=outcome.tool_calls or None,
        usage_anomalies=charge.anomalies if charge else [],
        stored=run.inp.store and outcome.status == "success",
        finish_reason=outcome.finish_reason,
        params=_params(run, outcome),
        stream=run.inp.stream,
        input_tokens=charge.usage.prompt_tokens if charge else 0,
        output_tokens=charge.usage.completion_tokens if charge else 0,
        total_tokens=charge.usage.total_tokens if charge else 0,
        cached_tokens=charge.usage.cached_tokens if charge else 0,
        cache_write_tokens=charge.usage.cache_write_tokens if charge else 0,
        cache_write_1h_tokens=charge.usage.cache_write_1h_tokens if charge else 0,
        reasoning_tokens=charge.usage.reasoning_tokens if charge else 0,
        input_cost_usd=charge.cost.input_cost if charge else ZERO,
        output_cost_usd=charge.cost.output_cost if charge else ZERO,
        total_cost_usd=total,
        estimated_cost_usd=run.estimated_cost(model.model_id) if model else ZERO,
        cache_savings_usd=outcome.cache_savings,
        latency_ms=run.finished_ms,
        status=outcome.status,
        http_status=outcome.http_status,
        error_code=outcome.error.code if outcome.error else "",
        error_message=_storable(outcome.error.message) if outcome.error else "",
        cached=outcome.cached,
        budget_fitted=run.budget_fitted,
        selection_mode=run.plan.mode,
        models_considered=run.plan.considered,
        candidates=[r.candidate.model_id for r in run.plan.ranked],
        comparison_id=run.inp.comparison_id,
        batch_id=run.inp.batch_id,
    )
    attempts = [
        unsaved(
            Attempt,
            request_id=run.request_id,
            index=index,
            model=a.model,
            provider=a.provider,
            status=a.status,
            status_code=a.status_code,
            error=_storable(a.error[:2000]),
            retryable=a.retryable,
            latency_ms=a.latency_ms,
            created_at=finished,
        )
        for index, a in enumerate(run.attempts)
    ]
    return row, attempts, answered


def _observe(run: CompletionRun, outcome: Outcome) -> None:
    door = run.inp.door
    model_id = outcome.model.model_id if outcome.model else (run.inp.model or "")
    provider = outcome.model.provider if outcome.model else ""
    metrics.child(
        metrics.REQUESTS, door, model_id, provider, outcome.status, str(outcome.cached).lower()
    ).inc()
    metrics.child(metrics.LATENCY, door, model_id, provider).observe(run.elapsed_ms() / 1000)
    if outcome.charge is not None and not outcome.cached:
        metrics.child(metrics.TOKENS, model_id, provider, "input").inc(outcome.charge.usage.prompt_tokens)
        metrics.child(metrics.TOKENS, model_id, provider, "output").inc(
            outcome.charge.usage.completion_tokens
        )
        metrics.child(metrics.COST, model_id, provider).inc(float(outcome.charge.cost.total))
    if outcome.cached:
        metrics.child(metrics.CACHE_HITS, model_id).inc()
    if outcome.error is not None and outcome.error.status == 402:
        metrics.BUDGET_REFUSALS.inc()
    first = run.plan.ranked[0].candidate.model_id if run.plan.ranked else model_id
    if outcome.status == "success" and model_id != first:
        metrics.child(metrics.FALLBACKS, model_id).inc()


async def log(run: CompletionRun, outcome: Outcome, *, rates_settled: bool = False) -> None:
    """The outcome in one round trip: the row completed, its attempts, the holds settled or freed.

    When the database can't take it, it is journaled (durably) and replayed later: the client still gets
    its answer, and the money is recorded exactly once.
    """
    _observe(run, outcome)
    if not rates_settled:  # (log_and_store settles them in its Redis round trip)
        await rate_settle(
            run, outcome
        )  # the tokens it counted against its rate limits become the actual ones
    row, attempts, answered = _log_rows(run, outcome)
    access_note(
        model=row.model or None,
        provider=row.provider or None,
        cached=row.cached,
        prompt_tokens=row.input_tokens,
        completion_tokens=row.output_tokens,
        cost_usd=str(row.total_cost_usd.normalize()) if row.total_cost_usd else "0",
        latency_ms=row.latency_ms,
        overhead_ms=round(run.overhead_ms(), 2),
        attempts=len(attempts),
    )
    settle = [(rid, row.total_cost_usd) for model_id, rid in run.reservations.items() if model_id == answered]
    release = [rid for model_id, rid in run.reservations.items() if model_id != answered]
    try:
        entry = JournalEntry(
            row=row, attempts=attempts, settle=settle, release=release, pending=run.pending_written
        )
        await write_outcome(entry)
    finally:
        lease_drop(list(run.reservations.values()))  # the call is over: its holds are settled or journaled


def pending_row(run: CompletionRun, model: CatalogModel) -> GatewayRequest:
    """The row written with the first hold, before any provider is called: the call can't go unrecorded."""
    messages, prompt_text = _logged_prompt(run, model)
    return unsaved(
        GatewayRequest,
        id=run.request_id,
        user_id=run.caller.user_id,
        api_key_id=run.caller.api_key_id,
        client_request_id=run.inp.client_request_id,
        created_at=run.created_at,
        requested_model=run.inp.model or "",
        model=model.model_id,
        provider=model.provider,
        catalog_model_id=model.pk,
        price_id=model.price_id,
        door=run.inp.door,
        messages=messages,
        prompt_text=prompt_text,
        params=_params(run),
        stream=run.inp.stream,
        estimated_cost_usd=run.estimated_cost(model.model_id),
        status=GatewayRequest.Status.PENDING,
        http_status=0,
        selection_mode=run.plan.mode,
        models_considered=run.plan.considered,
        candidates=[r.candidate.model_id for r in run.plan.ranked],
        comparison_id=run.inp.comparison_id,
        batch_id=run.inp.batch_id,
    )


async def fail(run: CompletionRun, error: ApiError, model: CatalogModel | None = None) -> ApiError:
    await log(run, Outcome(status="error", http_status=error.status, model=model, error=error))
    return error


# ------------------------------------------------------------------ work that must outlive the client's task


def keep(task: asyncio.Task[Any]) -> None:
    _background.add(task)
    task.add_done_callback(_forget)


def _forget(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: an error after the client left is in the log already


def log_in_background(run: CompletionRun, outcome: Outcome) -> asyncio.Task[None]:
    """For streams: the row must be written even when the client's task is being cancelled."""
    access_expect_note()  # the door's access line waits for this outcome
    task = asyncio.get_running_loop().create_task(log(run, outcome))
    keep(task)
    return task


async def unless_abandoned(work: Coroutine[Any, Any, T]) -> T:
    """Runs the work in a task of its own, so a client that goes away cannot cut it short.

    Cancelled halfway, a request would leave its budget reservation held until it expires and the
    provider's charge for the call unrecorded. Shielded, it finishes: logged and settled at its actual
    cost; only the answer goes nowhere.
    """
    task = asyncio.ensure_future(work)
    keep(task)
    return await asyncio.shield(task)


async def drain_background_logs() -> None:
    """Waits for stream log rows still being written (tests and graceful shutdown)."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)
