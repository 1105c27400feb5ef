"""Calling: each planned model in turn (a fallback after failures), each with retries, backoff and cooldowns."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from django.conf import settings
from opentelemetry.trace import Status, StatusCode

from config.api_errors import ApiError, BudgetExceeded, InvalidRequest, UpstreamError, UpstreamTimeout
from config.tracing import tracer
from providers.adapters import get_adapter, get_embedding_adapter
from providers.adapters.base import ChatResult, EmbeddingResult, ProviderError, StreamDelta
from providers.catalog import CatalogModel
from routing import health, metrics
from routing.pipeline.record import fail
from routing.pipeline.reserve import reserve
from routing.pipeline.run import CompletionRun
from routing.pipeline.types import AttemptRecord

logger = logging.getLogger(__name__)
Answer = TypeVar("Answer")


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
    metrics.child(metrics.UPSTREAM_LATENCY, model.model_id, model.provider).observe(latency / 1000)
    if run.attempts and run.attempts[-1].model == model.model_id:
        metrics.child(metrics.RETRIES, model.model_id, model.provider).inc()
    if error is not None:
        metrics.child(
            metrics.UPSTREAM_ERRORS, model.model_id, model.provider, str(error.status or error.kind)
        ).inc()
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


async def call_model(run: CompletionRun, model: CatalogModel, tries: int) -> ChatResult | ProviderError:
    adapter = get_adapter(model.provider)
    config = run.catalog.providers[model.provider]
    request = run.chat_request(model, stream=False)
    # A success's health sample is written by the caller, beside the request's record (pipeline.complete).
    return await _with_retries(run, model, tries, lambda: adapter.complete(config, request))


async def embed_model(run: CompletionRun, model: CatalogModel, tries: int) -> EmbeddingResult | ProviderError:
    """One embeddings call, retried like a completion: every input at once (the adapter chunks if it must)."""
    adapter = get_embedding_adapter(model.provider)
    if adapter is None:
        return ProviderError(f"{model.provider} has no embeddings API", status=404, kind="config")
    config = run.catalog.providers[model.provider]
    request = run.embedding_request(model)
    # Its success's health sample goes with the cache entry (caching.log_and_store).
    return await _with_retries(run, model, tries, lambda: adapter.embed(config, request))


UpstreamStream = tuple[AsyncIterator[StreamDelta], StreamDelta]


async def open_model_stream(
    run: CompletionRun, model: CatalogModel, tries: int
) -> UpstreamStream | ProviderError:
    """Starts the upstream stream and waits for its first delta; failures before it are retried."""
    adapter = get_adapter(model.provider)
    config = run.catalog.providers[model.provider]
    request = run.chat_request(model, stream=True)

    async def open_once() -> UpstreamStream:
        upstream = adapter.stream(config, request).__aiter__()
        try:
            return upstream, await anext(upstream)
        except StopAsyncIteration:
            await close_upstream(upstream)
            raise ProviderError(
                "the provider closed the stream without an answer", kind="protocol", retryable=True
            ) from None
        except BaseException:
            await close_upstream(upstream)
            raise

    return await _with_retries(run, model, tries, open_once)


async def close_upstream(upstream: AsyncIterator[StreamDelta]) -> None:
    closer = getattr(upstream, "aclose", None)
    if closer is not None:
        try:
            await closer()
        except Exception:  # closing a broken stream must not mask the real outcome
            logger.debug("closing upstream stream failed", exc_info=True)


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


async def first_answer(
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
            await reserve(run, model, first=index == 0)
        except BudgetExceeded as exc:
            if not run.attempts:
                raise await fail(run, exc, model) from None
            break
        last_model = model
        outcome = await attempt(run, model, _tries_for(run, index))
        if not isinstance(outcome, ProviderError):
            return model, outcome
        error = outcome
        if not error.retryable:
            break
    final = _final_error(run, error or _timeout_error(run.model(run.plan.ranked[0].candidate.model_id)))
    raise await fail(run, final, last_model)
