"""Chat completions: plan the models, reserve budget, call with retries and fallbacks, settle and log.

Every request that reaches a provider ends in exactly one GatewayRequest row (plus one Attempt row per
provider call), written in the same transaction that settles its budget reservation.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from opentelemetry.trace import Status, StatusCode

from budgets.hotpath import abudget_reserve, release_statement, settle_statement
from budgets.services import budget_release, budget_settle, budget_state
from config.api_errors import (
    ApiError,
    BudgetExceeded,
    InvalidRequest,
    PayloadTooLarge,
    UpstreamError,
    UpstreamTimeout,
)
from config.db import get_pool, insert_statement, run_orm, run_script
from config.rendering import dumps
from config.tracing import tracer
from providers.adapters import get_adapter
from providers.adapters.base import ChatRequest, ChatResult, ProviderError, StreamDelta, Usage
from providers.catalog import Catalog, CatalogModel, acatalog_get
from providers.pricing import Cost, cost_of, max_output_tokens_affordable, worst_case_cost
from providers.tokens import count_message_tokens, count_text_tokens
from routing import engine, health, metrics
from routing.cache import cache_get, cache_key, cache_put, cache_scope
from routing.models import Attempt, GatewayRequest

logger = logging.getLogger(__name__)
ZERO = Decimal(0)
Answer = TypeVar("Answer")
# Approximate token counts can run low; reserve with headroom so the actual cost stays inside the hold.
APPROX_PROMPT_MARGIN = Decimal("1.15")
_background: set[asyncio.Task[Any]] = set()
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: int
    api_key_id: int | None = None
    cache_group: str = ""


@dataclass(kw_only=True)
class CompletionInput:
    """A validated /v1/chat/completions body (see routing.api.serializers)."""

    messages: list[dict[str, Any]]
    model: str | None = None
    mode: str = engine.MODE_MANUAL
    models: list[str] | None = None
    provider_filter: list[str] | None = None
    fallbacks: list[str] = field(default_factory=list)
    max_cost: Decimal | None = None
    expected_output_tokens: int = engine.DEFAULT_EXPECTED_OUTPUT_TOKENS
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    user: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    stream: bool = False
    include_usage: bool = False
    cache_read: bool = True
    cache_write: bool = True
    budget_policy: str = "refuse"
    client_request_id: str = ""
    comparison_id: str | None = None
    batch_id: str | None = None
    idempotency_key: str | None = None  # batch items: one charge per item, whatever is redelivered

    def cache_params(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": self.stop,
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "response_format": self.response_format,
            "seed": self.seed,
        }

    def uses_images(self) -> bool:
        for message in self.messages:
            content = message.get("content")
            if isinstance(content, list) and any(
                isinstance(p, dict) and p.get("type") == "image_url" for p in content
            ):
                return True
        return False

    def uses_json(self) -> bool:
        return bool(
            self.response_format and self.response_format.get("type") in ("json_object", "json_schema")
        )


@dataclass(slots=True)
class AttemptRecord:
    model: str
    provider: str
    status: str
    latency_ms: int
    status_code: int | None = None
    error: str = ""
    retryable: bool = False

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model,
            "provider": self.provider,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "status_code": self.status_code,
        }
        if self.error:
            data["message"] = self.error
        return data


@dataclass(slots=True)
class Charge:
    """What the answer cost, priced at the price row in force when it was planned."""

    usage: Usage
    cost: Cost
    price_id: int | None


@dataclass
class CompletionRun:
    """The state of one request from plan to log row."""

    caller: Caller
    inp: CompletionInput
    request_id: str
    catalog: Catalog
    plan: engine.Plan
    prompt_tokens: dict[str, int]  # per model id: the estimate used for fit, cost and reservations
    started: float = field(default_factory=time.monotonic)
    created_at: datetime = field(default_factory=timezone.now)
    attempts: list[AttemptRecord] = field(default_factory=list)
    reservations: dict[str, int] = field(default_factory=dict)  # model id → reservation id
    budget_fitted: bool = False
    max_tokens_override: int | None = None
    cache_status: str = "bypass"
    cache_key: str | None = None
    deadline: float = 0.0

    def __post_init__(self) -> None:
        self.deadline = self.started + settings.ROUTER_DEADLINE_S

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def model(self, model_id: str) -> CatalogModel:
        found = self.catalog.by_name(model_id)
        assert found is not None
        return found

    def chat_request(self, model_id: str, *, stream: bool) -> ChatRequest:
        inp = self.inp
        return ChatRequest(
            model=model_id,
            messages=inp.messages,
            max_tokens=self.max_tokens_override or inp.max_tokens,
            temperature=inp.temperature,
            top_p=inp.top_p,
            stop=inp.stop,
            seed=inp.seed,
            user=inp.user,
            tools=inp.tools,
            tool_choice=inp.tool_choice,
            response_format=inp.response_format,
            stream=stream,
        )


# --------------------------------------------------------------------------------------------- database


# --------------------------------------------------------------------------------------------- planning


def _candidates(
    catalog: Catalog, cooldowns: set[str], latencies: dict[str, float | None]
) -> list[engine.Candidate]:
    return [
        engine.Candidate(
            model_id=m.model_id,
            provider=m.provider,
            context_window=m.context_window,
            max_output_tokens=m.max_output_tokens,
            rates=m.rates,
            aliases=m.aliases,
            supports_tools=m.supports_tools,
            supports_vision=m.supports_vision,
            supports_json=m.supports_json,
            active=m.active,
            provider_active=m.provider_active,
            provider_configured=m.provider_configured,
            deprecation_date=m.deprecation_date,
            p50_latency_ms=latencies.get(m.model_id),
            in_cooldown=m.provider in cooldowns,
        )
        for m in catalog.models
    ]


def _prompt_tokens(inp: CompletionInput, model: CatalogModel) -> int:
    counted = count_message_tokens(inp.messages, model.model_id, model.provider, tools=inp.tools)
    if counted.is_exact_tokenizer:
        return counted.tokens
    return int(Decimal(counted.tokens) * APPROX_PROMPT_MARGIN) + 1


def _estimate_needs(inp: CompletionInput, catalog: Catalog) -> tuple[dict[str, int], int]:
    """Prompt tokens per model (tokenizers differ by vendor); the largest is what context fit is judged on."""
    per_model: dict[str, int] = {}
    by_method: dict[tuple[str, str], int] = {}
    for model in catalog.models:
        key = (model.provider, model.model_id if model.provider == "openai" else "")
        if key not in by_method:
            by_method[key] = _prompt_tokens(inp, model)
        per_model[model.model_id] = by_method[key]
    return per_model, max(per_model.values(), default=0)


async def completion_plan(*, caller: Caller, inp: CompletionInput, request_id: str) -> CompletionRun:
    """Chooses the models to try, in order; raises 400 (unknown model, nothing fits) or 413 (too long)."""
    catalog = await acatalog_get()
    providers = sorted({m.provider for m in catalog.models})
    # `model: auto` is cost-optimized in manual mode's clothing: it skips providers in cooldown too.
    optimized = inp.mode != engine.MODE_MANUAL or inp.model == engine.AUTO_MODEL
    cooldowns = await health.cooldowns_get(providers) if optimized else set()
    latencies = await health.latencies_get([m.model_id for m in catalog.models])
    prompt_tokens, largest = _estimate_needs(inp, catalog)
    needs = engine.Needs(
        prompt_tokens=largest,
        today=timezone.now().date(),
        expected_output_tokens=inp.expected_output_tokens,
        max_tokens=inp.max_tokens,
        uses_tools=bool(inp.tools),
        uses_images=inp.uses_images(),
        uses_json=inp.uses_json(),
        provider_filter=tuple(inp.provider_filter) if inp.provider_filter else None,
        max_cost=inp.max_cost,
    )
    if inp.mode == engine.MODE_MANUAL and inp.model and inp.model != engine.AUTO_MODEL:
        # Manual mode judges context on the requested model's own tokenizer.
        chosen = catalog.by_name(inp.model)
        if chosen is not None:
            needs = engine.Needs(**{**needs.__dict__, "prompt_tokens": prompt_tokens[chosen.model_id]})
    try:
        plan = engine.plan(
            mode=inp.mode,
            model=inp.model,
            candidates=_candidates(catalog, cooldowns, latencies),
            needs=needs,
            models=inp.models,
            fallbacks=inp.fallbacks,
        )
    except engine.ModelNotFound as exc:
        raise InvalidRequest(
            f"Model '{exc.name}' not found or inactive", param="model", code="model_not_found"
        ) from exc
    except engine.NoCandidates as exc:
        if exc.context_exceeded:
            raise PayloadTooLarge(str(exc), param="messages", code="context_length_exceeded") from exc
        raise InvalidRequest(str(exc), param="model", code="no_model_fits") from exc
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="model", code="invalid_value") from exc
    return CompletionRun(
        caller=caller, inp=inp, request_id=request_id, catalog=catalog, plan=plan, prompt_tokens=prompt_tokens
    )


# --------------------------------------------------------------------------------------------- budget


def _worst_case(run: CompletionRun, model: CatalogModel, max_tokens: int | None) -> Decimal:
    assert model.rates is not None
    output = max_tokens or model.max_output_tokens
    return worst_case_cost(model.rates, run.prompt_tokens[model.model_id], output)


async def _reserve(run: CompletionRun, model: CatalogModel, *, first: bool) -> None:
    """Holds the attempt's worst case; with budget_policy "fit" the first model may get a smaller max_tokens."""
    amount = _worst_case(run, model, run.max_tokens_override or run.inp.max_tokens)
    key = f"{run.inp.idempotency_key}:{model.model_id}" if run.inp.idempotency_key else None
    try:
        reservation_id = await abudget_reserve(
            user_id=run.caller.user_id, amount=amount, request_id=run.request_id, idempotency_key=key
        )
    except BudgetExceeded:
        if not (first and run.inp.budget_policy == "fit"):
            raise
        state = await run_orm(budget_state, user_id=run.caller.user_id)
        assert model.rates is not None
        remaining = state.remaining if state.remaining is not None else ZERO
        affordable = max_output_tokens_affordable(
            model.rates, run.prompt_tokens[model.model_id], remaining, limit=model.max_output_tokens
        )
        if affordable < 1:
            raise
        run.max_tokens_override = min(affordable, run.inp.max_tokens or affordable)
        run.budget_fitted = True
        amount = _worst_case(run, model, run.max_tokens_override)
        reservation_id = await abudget_reserve(
            user_id=run.caller.user_id, amount=amount, request_id=run.request_id, idempotency_key=key
        )
    run.reservations[model.model_id] = reservation_id


# --------------------------------------------------------------------------------------------- calling


def _backoff(error: ProviderError, retry_number: int) -> float:
    """The provider's Retry-After when it sent one, else exponential backoff with jitter."""
    if error.retry_after_s is not None:
        return error.retry_after_s
    base = settings.ROUTER_RETRY_BASE_S * (2**retry_number)
    return min(base * random.uniform(0.5, 1.5), settings.ROUTER_RETRY_MAX_S)


def _timeout_error(model: CatalogModel) -> ProviderError:
    return ProviderError(f"{model.provider} did not answer in time", kind="timeout", retryable=True)


def _tries_for(run: CompletionRun, index: int) -> int:
    """Retry a model at most once when another candidate waits; the last candidate may use every attempt left."""
    left = settings.ROUTER_MAX_ATTEMPTS - len(run.attempts)
    more_candidates = index < len(run.plan.ranked) - 1
    return min(2, left) if more_candidates else left


async def _wait_before_retry(run: CompletionRun, error: ProviderError, retry_number: int) -> bool:
    """Sleeps the backoff unless it would pass the deadline or exceed the cap; False means move on."""
    delay = _backoff(error, retry_number)
    if delay > settings.ROUTER_RETRY_AFTER_MAX_S or time.monotonic() + delay >= run.deadline:
        return False
    await asyncio.sleep(delay)
    return True


def _record_attempt(
    run: CompletionRun, model: CatalogModel, started: float, error: ProviderError | None
) -> None:
    latency = int((time.monotonic() - started) * 1000)
    span = tracer.start_span(
        "provider.attempt",
        start_time=time.time_ns() - latency * 1_000_000,
        attributes={
            "router.model": model.model_id,
            "router.provider": model.provider,
            "router.attempt": len(run.attempts),
        },
    )
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, str(error)))
        span.set_attribute("http.response.status_code", error.status or 0)
    span.end()
    metrics.UPSTREAM_LATENCY.labels(model.model_id, model.provider).observe(latency / 1000)
    if run.attempts and run.attempts[-1].model == model.model_id:
        metrics.RETRIES.labels(model.model_id, model.provider).inc()
    if error is not None:
        metrics.UPSTREAM_ERRORS.labels(model.model_id, model.provider, str(error.status or error.kind)).inc()
    if error is None:
        run.attempts.append(AttemptRecord(model.model_id, model.provider, "success", latency, 200))
    else:
        run.attempts.append(
            AttemptRecord(
                model.model_id, model.provider, "error", latency, error.status, str(error), error.retryable
            )
        )


async def _with_retries(
    run: CompletionRun, model: CatalogModel, tries: int, once: Callable[[], Awaitable[Answer]]
) -> Answer | ProviderError:
    """Calls `once` until it answers, retrying retryable failures with backoff, each try an Attempt row."""
    timeout_s = run.catalog.providers[model.provider].timeout_s
    error: ProviderError = _timeout_error(model)
    for retry_number in range(tries):
        started = time.monotonic()
        remaining = run.deadline - started
        if remaining <= 0:
            break
        try:
            async with asyncio.timeout(min(timeout_s, remaining)):
                answer = await once()
        except TimeoutError:
            error = _timeout_error(model)
        except ProviderError as exc:
            error = exc
        else:
            _record_attempt(run, model, started, None)
            return answer
        _record_attempt(run, model, started, error)
        await health.provider_failed(model.provider)
        if not error.retryable or retry_number == tries - 1:
            break
        if not await _wait_before_retry(run, error, retry_number):
            break
    return error


async def _call_model(run: CompletionRun, model: CatalogModel, tries: int) -> ChatResult | ProviderError:
    adapter = get_adapter(model.provider)
    config = run.catalog.providers[model.provider]
    request = run.chat_request(model.model_id, stream=False)
    outcome = await _with_retries(run, model, tries, lambda: adapter.complete(config, request))
    if isinstance(outcome, ChatResult):
        await health.provider_succeeded(model.provider, model.model_id, run.attempts[-1].latency_ms)
    return outcome


def _final_error(run: CompletionRun, error: ProviderError) -> ApiError:
    attempts = [a.as_json() for a in run.attempts]
    if not error.retryable and error.status in (400, 413, 422):
        return InvalidRequest(
            f"The provider rejected the request: {error}",
            code="upstream_bad_request",
            extra={"attempts": attempts},
        )
    if not error.retryable and error.status in (401, 403):
        # Our credentials for that provider, not the caller's: a 401 to the client would blame their key.
        return UpstreamError(
            f"The provider refused the router's credentials ({error.status}): {error}",
            code="upstream_auth_failed",
            extra={"attempts": attempts},
        )
    if not error.retryable and error.status == 404:
        return UpstreamError(
            f"The provider does not know this model or endpoint ({error.status}): {error}",
            code="upstream_not_found",
            extra={"attempts": attempts},
        )
    if error.kind == "timeout":
        return UpstreamTimeout("The provider did not answer within the timeout", extra={"attempts": attempts})
    return UpstreamError(
        f"All {len(attempts)} attempt(s) failed; last: {error}", extra={"attempts": attempts}
    )


# --------------------------------------------------------------------------------------------- pricing


def _charge(run: CompletionRun, model: CatalogModel, usage: Usage) -> Charge:
    assert model.rates is not None
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    cost = cost_of(model.rates, usage.prompt_tokens, usage.completion_tokens, cached)
    return Charge(usage=usage, cost=cost, price_id=model.price_id)


def _usage_json(charge: Charge, estimated: Decimal) -> dict[str, Any]:
    usage = charge.usage
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "input_cost_usd": charge.cost.input_cost,
        "output_cost_usd": charge.cost.output_cost,
        "total_cost_usd": charge.cost.total,
        "estimated_cost_usd": estimated,
    }


def _estimated_cost(run: CompletionRun, model_id: str) -> Decimal:
    for ranked in run.plan.ranked:
        if ranked.candidate.model_id == model_id:
            return ranked.estimated_cost
    return ZERO


# --------------------------------------------------------------------------------------------- logging


@dataclass
class Outcome:
    """Everything the log row needs, whatever happened."""

    status: str
    http_status: int
    model: CatalogModel | None
    charge: Charge | None = None
    content: str = ""
    finish_reason: str = ""
    error: ApiError | None = None
    cached: bool = False
    cache_savings: Decimal = ZERO


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


def _storable(text: str) -> str:
    """Text PostgreSQL can store: a NUL from a provider would fail the log write after the call was paid for."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _log_rows(run: CompletionRun, outcome: Outcome) -> tuple[GatewayRequest, list[Attempt], str | None]:
    """The log row and its attempts (unsaved), and which model's reservation to settle (the one that answered)."""
    charge = outcome.charge
    model = outcome.model
    total = charge.cost.total if charge else ZERO
    answered = model.model_id if (model is not None and charge is not None) else None
    finished = timezone.now()
    row = GatewayRequest(
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
        messages=run.inp.messages,
        prompt_text=_prompt_text(run.inp.messages),
        response_text=_storable(outcome.content),
        finish_reason=outcome.finish_reason,
        params={k: v for k, v in run.inp.cache_params().items() if k != "messages" and v is not None},
        stream=run.inp.stream,
        input_tokens=charge.usage.prompt_tokens if charge else 0,
        output_tokens=charge.usage.completion_tokens if charge else 0,
        total_tokens=charge.usage.total_tokens if charge else 0,
        cached_tokens=charge.usage.cached_tokens if charge else 0,
        reasoning_tokens=charge.usage.reasoning_tokens if charge else 0,
        input_cost_usd=charge.cost.input_cost if charge else ZERO,
        output_cost_usd=charge.cost.output_cost if charge else ZERO,
        total_cost_usd=total,
        estimated_cost_usd=_estimated_cost(run, model.model_id) if model else ZERO,
        cache_savings_usd=outcome.cache_savings,
        latency_ms=run.elapsed_ms(),
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
        Attempt(
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


def _write_log(run: CompletionRun, outcome: Outcome) -> None:
    """One transaction: the log row, its attempts, and the budget (settle the one that answered, free the rest)."""
    row, attempts, answered = _log_rows(run, outcome)
    with transaction.atomic():
        row.save(force_insert=True)
        Attempt.objects.bulk_create(attempts)
        for model_id, reservation_id in run.reservations.items():
            if model_id == answered:
                budget_settle(reservation_id=reservation_id, actual_cost=row.total_cost_usd)
            else:
                budget_release(reservation_id=reservation_id)


def _observe(run: CompletionRun, outcome: Outcome) -> None:
    model_id = outcome.model.model_id if outcome.model else (run.inp.model or "")
    provider = outcome.model.provider if outcome.model else ""
    metrics.REQUESTS.labels(model_id, provider, outcome.status, str(outcome.cached).lower()).inc()
    metrics.LATENCY.labels(model_id, provider).observe(run.elapsed_ms() / 1000)
    if outcome.charge is not None and not outcome.cached:
        metrics.TOKENS.labels(model_id, provider, "input").inc(outcome.charge.usage.prompt_tokens)
        metrics.TOKENS.labels(model_id, provider, "output").inc(outcome.charge.usage.completion_tokens)
        metrics.COST.labels(model_id, provider).inc(float(outcome.charge.cost.total))
    if outcome.cached:
        metrics.CACHE_HITS.labels(model_id).inc()
    if outcome.error is not None and outcome.error.status == 402:
        metrics.BUDGET_REFUSALS.inc()
    first = run.plan.ranked[0].candidate.model_id if run.plan.ranked else model_id
    if outcome.status == "success" and model_id != first:
        metrics.FALLBACKS.labels(model_id).inc()


async def _log(run: CompletionRun, outcome: Outcome) -> None:
    """The same transaction as _write_log, sent in one round trip on PostgreSQL (a durable commit)."""
    _observe(run, outcome)
    pool = await get_pool()
    if pool is None:
        await run_orm(_write_log, run, outcome)
        return
    row, attempts, answered = _log_rows(run, outcome)
    statements: list[tuple[str, Any]] = []
    if not settings.ROUTER_LOG_DURABLE_COMMIT:
        statements.append(("SET LOCAL synchronous_commit TO OFF", None))
    statements.append(insert_statement([row]))
    if attempts:
        statements.append(insert_statement(attempts))
    for model_id, reservation_id in run.reservations.items():
        if model_id == answered:
            statements.append(settle_statement(reservation_id=reservation_id, actual_cost=row.total_cost_usd))
        else:
            statements.append(release_statement(reservation_id=reservation_id))
    await run_script(statements)


def _log_in_background(run: CompletionRun, outcome: Outcome) -> asyncio.Task[None]:
    """For streams: the row must be written even when the client's task is being cancelled."""
    task = asyncio.get_running_loop().create_task(_log(run, outcome))
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


async def _fail(run: CompletionRun, error: ApiError, model: CatalogModel | None = None) -> ApiError:
    await _log(run, Outcome(status="error", http_status=error.status, model=model, error=error))
    return error


# --------------------------------------------------------------------------------------------- responses


def _headers(run: CompletionRun, model: CatalogModel, cost: Decimal | None) -> dict[str, str]:
    headers = {
        "X-Request-Id": run.request_id,
        "X-Router-Model": model.model_id,
        "X-Router-Provider": model.provider,
        "X-Router-Cache": run.cache_status,
    }
    if cost is not None:
        headers["X-Router-Cost-Usd"] = dumps(cost).decode()
    if model.deprecation_date is not None and model.deprecation_date <= run.created_at.date():
        headers["Deprecation"] = (
            f"@{int(datetime.combine(model.deprecation_date, datetime.min.time()).timestamp())}"
        )
    return headers


def _message(content: str | None, tool_calls: list[dict[str, Any]] | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _body(
    run: CompletionRun,
    model: CatalogModel,
    *,
    content: str | None,
    tool_calls: list[dict[str, Any]] | None,
    finish_reason: str,
    charge: Charge,
    cached: bool,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": run.request_id,
        "object": "chat.completion",
        "created": int(run.created_at.timestamp()),
        "model": model.model_id,
        "provider": model.provider,
        "choices": [{"index": 0, "message": _message(content, tool_calls), "finish_reason": finish_reason}],
        "content": content,
        "finish_reason": finish_reason,
        "usage": _usage_json(charge, _estimated_cost(run, model.model_id)),
        "latency_ms": run.elapsed_ms(),
        "created_at": run.created_at.isoformat().replace("+00:00", "Z"),
        "selection_mode": run.plan.mode,
        "models_considered": run.plan.considered,
        "cached": cached,
        "attempts": [a.as_json() for a in run.attempts],
    }
    if run.budget_fitted:
        body["budget_fitted"] = True
        body["max_tokens_applied"] = run.max_tokens_override
    return body


@dataclass
class CompletionResponse:
    body: dict[str, Any]
    headers: dict[str, str]


def _cache_entry(model: CatalogModel, result: ChatResult, charge: Charge, request_id: str) -> dict[str, Any]:
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
        "original_cost_usd": str(charge.cost.total),
        "original_request_id": request_id,
    }


def _cache_key_for(run: CompletionRun, model_id: str) -> str:
    """Over what the provider is sent: a max_tokens lowered to fit the budget changes the answer."""
    scope = cache_scope(user_id=run.caller.user_id, cache_group=run.caller.cache_group)
    params = {**run.inp.cache_params(), "max_tokens": run.max_tokens_override or run.inp.max_tokens}
    return cache_key(scope=scope, model_id=model_id, params=params)


async def _cache_store(run: CompletionRun, model: CatalogModel, result: ChatResult, charge: Charge) -> None:
    """Stored under the model that answered: a fallback's answer must not serve asks for the first choice."""
    if run.inp.cache_write and run.cache_key:
        entry = _cache_entry(model, result, charge, run.request_id)
        await cache_put(_cache_key_for(run, model.model_id), entry)


async def _cache_lookup(run: CompletionRun) -> dict[str, Any] | None:
    """The key is taken after the model is chosen, so optimized modes share entries with manual ones."""
    if not run.plan.ranked:
        return None
    run.cache_key = _cache_key_for(run, run.plan.ranked[0].candidate.model_id)
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
    )


async def _serve_cache_hit(
    run: CompletionRun, entry: dict[str, Any]
) -> tuple[CatalogModel, ChatResult, Charge]:
    """A hit costs nothing and reserves nothing, but is logged, with the money it saved."""
    model = run.model(entry["model"])
    result = _cached_result(entry)
    zero = Charge(usage=result.usage, cost=Cost(ZERO, ZERO, ZERO), price_id=model.price_id)
    run.attempts.append(AttemptRecord(model.model_id, model.provider, "cache_hit", 0, 200))
    await _log(
        run,
        Outcome(
            status="success",
            http_status=200,
            model=model,
            charge=zero,
            content=result.content or "",
            finish_reason=result.finish_reason,
            cached=True,
            cache_savings=Decimal(entry["original_cost_usd"]),
        ),
    )
    return model, result, zero


def _keep(task: asyncio.Task[Any]) -> None:
    _background.add(task)
    task.add_done_callback(_forget)


def _forget(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: an error after the client left is in the log already


async def _unless_abandoned(work: Coroutine[Any, Any, T]) -> T:
    """Runs the work in a task of its own, so a client that goes away cannot cut it short.

    Cancelled halfway, a request would leave its budget reservation held until it expires and the
    provider's charge for the call unrecorded. Shielded, it finishes: logged and settled at its actual
    cost; only the answer goes nowhere.
    """
    task = asyncio.ensure_future(work)
    _keep(task)
    return await asyncio.shield(task)


async def completion_create(*, caller: Caller, inp: CompletionInput, request_id: str) -> CompletionResponse:
    """A non-streaming completion. Raises ApiError (already logged when a provider was involved).

    It runs to the end even when the client disconnects (see _unless_abandoned).
    """
    return await _unless_abandoned(_completion_create(caller=caller, inp=inp, request_id=request_id))


async def _first_answer(
    run: CompletionRun,
    attempt: Callable[[CompletionRun, CatalogModel, int], Awaitable[Answer | ProviderError]],
) -> tuple[CatalogModel, Answer]:
    """Tries the planned models in order, each holding its own worst case, until one answers.

    When none does, logs the request and raises its error: 402 when the first hold was refused (before any
    provider was called), else one 502/504 listing every attempt. A fallback the budget cannot hold ends
    the search with the failures so far.
    """
    error: ProviderError | None = None
    last_model: CatalogModel | None = None
    for index, ranked in enumerate(run.plan.ranked):
        if len(run.attempts) >= settings.ROUTER_MAX_ATTEMPTS or time.monotonic() >= run.deadline:
            break
        model = run.model(ranked.candidate.model_id)
        try:
            await _reserve(run, model, first=index == 0)
        except BudgetExceeded as exc:
            if not run.attempts:
                raise await _fail(run, exc, model) from None
            break
        last_model = model
        outcome = await attempt(run, model, _tries_for(run, index))
        if not isinstance(outcome, ProviderError):
            return model, outcome
        error = outcome
        if not error.retryable:
            break
    final = _final_error(run, error or _timeout_error(run.model(run.plan.ranked[0].candidate.model_id)))
    raise await _fail(run, final, last_model)


async def _completion_create(*, caller: Caller, inp: CompletionInput, request_id: str) -> CompletionResponse:
    run = await completion_plan(caller=caller, inp=inp, request_id=request_id)
    entry = await _cache_lookup(run)
    if entry is not None:
        model, result, charge = await _serve_cache_hit(run, entry)
        body = _body(
            run,
            model,
            content=result.content,
            tool_calls=result.tool_calls,
            finish_reason=result.finish_reason,
            charge=charge,
            cached=True,
        )
        return CompletionResponse(body=body, headers=_headers(run, model, ZERO))

    model, outcome = await _first_answer(run, _call_model)
    charge = _charge(run, model, outcome.usage)
    await _log(
        run,
        Outcome(
            status="success",
            http_status=200,
            model=model,
            charge=charge,
            content=outcome.content or "",
            finish_reason=outcome.finish_reason,
        ),
    )
    if outcome.finish_reason != "content_filter":
        await _cache_store(run, model, outcome, charge)
    body = _body(
        run,
        model,
        content=outcome.content,
        tool_calls=outcome.tool_calls,
        finish_reason=outcome.finish_reason,
        charge=charge,
        cached=False,
    )
    return CompletionResponse(body=body, headers=_headers(run, model, charge.cost.total))


# --------------------------------------------------------------------------------------------- streaming


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + dumps(data) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


@dataclass
class OpenStream:
    """A stream whose first delta has arrived (so fallbacks are over) or a cache hit to replay."""

    headers: dict[str, str]
    body: AsyncIterator[bytes]
    # Ends a stream whose client left before reading a byte of it: closes the upstream, logs and settles.
    abandon: Callable[[], Awaitable[None]] | None = None


class _StreamState:
    def __init__(self, run: CompletionRun, model: CatalogModel) -> None:
        self.run = run
        self.model = model
        self.text: list[str] = []
        self.finish_reason = ""
        self.usage: Usage | None = None
        self.tool_calls: dict[int, dict[str, Any]] = {}

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return sse(
            {
                "id": self.run.request_id,
                "object": "chat.completion.chunk",
                "created": int(self.run.created_at.timestamp()),
                "model": self.model.model_id,
                "provider": self.model.provider,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
        )

    def absorb(self, delta: StreamDelta) -> list[bytes]:
        out: list[bytes] = []
        if delta.content:
            self.text.append(delta.content)
            out.append(self.chunk({"content": delta.content}))
        if delta.tool_calls:
            for call in delta.tool_calls:
                slot = self.tool_calls.setdefault(
                    call.get("index", 0),
                    {"id": call.get("id"), "type": "function", "function": {"name": "", "arguments": ""}},
                )
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
            out.append(self.chunk({"tool_calls": delta.tool_calls}))
        if delta.finish_reason:
            self.finish_reason = delta.finish_reason
            out.append(self.chunk({}, delta.finish_reason))
        if delta.usage is not None:
            self.usage = delta.usage
        return out

    def final_usage(self) -> Usage:
        """The provider's usage, or, for a stream cut short, an estimate of what was generated."""
        if self.usage is not None:
            return self.usage
        generated = count_text_tokens("".join(self.text), self.model.model_id, self.model.provider)
        return Usage(prompt_tokens=self.run.prompt_tokens[self.model.model_id], completion_tokens=generated)

    def outcome(self, error: ApiError | None) -> Outcome:
        charge = _charge(self.run, self.model, self.final_usage())
        return Outcome(
            status="error" if error else "success",
            http_status=error.status if error else 200,
            model=self.model,
            charge=charge,
            content="".join(self.text),
            finish_reason=self.finish_reason,
            error=error,
        )

    def usage_chunk(self, charge: Charge) -> bytes:
        return sse(
            {
                "id": self.run.request_id,
                "object": "chat.completion.chunk",
                "created": int(self.run.created_at.timestamp()),
                "model": self.model.model_id,
                "provider": self.model.provider,
                "choices": [],
                "usage": _usage_json(charge, _estimated_cost(self.run, self.model.model_id)),
            }
        )


async def _open_model_stream(
    run: CompletionRun, model: CatalogModel, tries: int
) -> tuple[AsyncIterator[StreamDelta], StreamDelta] | ProviderError:
    """Starts the upstream stream and waits for its first delta; failures before it are retried."""
    adapter = get_adapter(model.provider)
    config = run.catalog.providers[model.provider]
    request = run.chat_request(model.model_id, stream=True)

    async def open_once() -> tuple[AsyncIterator[StreamDelta], StreamDelta]:
        upstream = adapter.stream(config, request).__aiter__()
        try:
            return upstream, await anext(upstream)
        except StopAsyncIteration:
            await _close(upstream)
            raise ProviderError(
                "the provider closed the stream without an answer", kind="protocol", retryable=True
            ) from None
        except BaseException:
            await _close(upstream)
            raise

    return await _with_retries(run, model, tries, open_once)


async def _close(upstream: AsyncIterator[StreamDelta]) -> None:
    closer = getattr(upstream, "aclose", None)
    if closer is not None:
        try:
            await closer()
        except Exception:  # closing a broken stream must not mask the real outcome
            logger.debug("closing upstream stream failed", exc_info=True)


async def _relay(
    run: CompletionRun, state: _StreamState, upstream: AsyncIterator[StreamDelta], first: StreamDelta
) -> AsyncIterator[bytes]:
    """Relays the upstream stream as OpenAI chunks; logs and settles when it ends, however it ends.

    The row is written before the final chunks, so a client that saw [DONE] finds its request logged; a
    client that goes away cancels this generator, and the row is then written by a task of its own.
    """
    error: ApiError | None = None
    chunk_timeout = run.catalog.providers[state.model.provider].timeout_s
    try:
        yield state.chunk({"role": "assistant", "content": ""})
        for piece in state.absorb(first):
            yield piece
        while True:
            try:
                async with asyncio.timeout(chunk_timeout):
                    delta = await anext(upstream)
            except StopAsyncIteration:
                break
            for piece in state.absorb(delta):
                yield piece
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
        _log_in_background(run, state.outcome(disconnected))
        await _close(upstream)
        raise
    await _close(upstream)
    outcome = state.outcome(error)
    await _log(run, outcome)
    if error is not None:
        await health.provider_failed(state.model.provider)
        yield sse(error.body())
        yield SSE_DONE
        return
    await health.provider_succeeded(state.model.provider, state.model.model_id, run.attempts[-1].latency_ms)
    # Stored before the final chunks, like the row: a client that saw [DONE] and asks again gets the hit.
    if state.finish_reason and state.finish_reason != "content_filter" and outcome.charge is not None:
        result = ChatResult(
            content=outcome.content,
            finish_reason=state.finish_reason,
            usage=outcome.charge.usage,
            tool_calls=list(state.tool_calls.values()) or None,
        )
        await _cache_store(run, state.model, result, outcome.charge)
    if run.inp.include_usage:
        assert outcome.charge is not None
        yield state.usage_chunk(outcome.charge)
    yield SSE_DONE


async def _replay(
    run: CompletionRun, model: CatalogModel, result: ChatResult, charge: Charge
) -> AsyncIterator[bytes]:
    state = _StreamState(run, model)
    yield state.chunk({"role": "assistant", "content": ""})
    if result.content:
        yield state.chunk({"content": result.content})
    if result.tool_calls:
        yield state.chunk({"tool_calls": [{"index": i, **call} for i, call in enumerate(result.tool_calls)]})
    yield state.chunk({}, result.finish_reason)
    if run.inp.include_usage:
        yield state.usage_chunk(charge)
    yield SSE_DONE


async def completion_stream_open(*, caller: Caller, inp: CompletionInput, request_id: str) -> OpenStream:
    """Opens a streaming completion. Errors before the first byte raise ApiError like non-streaming ones.

    A client that goes away before the stream opens does not cut the opening short (reservations and
    attempts in flight would be lost); the stream it opened is then ended as a disconnect.
    """
    task = asyncio.ensure_future(_completion_stream_open(caller=caller, inp=inp, request_id=request_id))
    _keep(task)
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
        _keep(asyncio.ensure_future(opened.abandon()))


async def _abandon_stream(
    run: CompletionRun, state: _StreamState, upstream: AsyncIterator[StreamDelta], first: StreamDelta
) -> None:
    state.absorb(first)  # charged for what the provider had generated, like a disconnect mid-stream
    await _close(upstream)
    disconnected = ApiError(
        "The client disconnected before the stream began", status=499, code="client_disconnected"
    )
    await _log(run, state.outcome(disconnected))


async def _completion_stream_open(*, caller: Caller, inp: CompletionInput, request_id: str) -> OpenStream:
    run = await completion_plan(caller=caller, inp=inp, request_id=request_id)
    entry = await _cache_lookup(run)
    if entry is not None:
        model, result, charge = await _serve_cache_hit(run, entry)
        return OpenStream(headers=_headers(run, model, ZERO), body=_replay(run, model, result, charge))

    model, (upstream, first) = await _first_answer(run, _open_model_stream)
    state = _StreamState(run, model)
    headers = _headers(run, model, None)
    headers["X-Router-Cost-Usd"] = dumps(_estimated_cost(run, model.model_id)).decode()
    headers["X-Router-Cost-Estimated"] = "true"
    return OpenStream(
        headers=headers,
        body=_relay(run, state, upstream, first),
        abandon=functools.partial(_abandon_stream, run, state, upstream, first),
    )


async def drain_background_logs() -> None:
    """Waits for stream log rows still being written (tests and graceful shutdown)."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)
