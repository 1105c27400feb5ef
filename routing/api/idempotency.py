"""Idempotency-Key on the spending POSTs: a retry with the same key gets the first outcome, never a second charge.

One call wraps a view's work once the caller is authenticated (so a bad key stays a 401, whatever else):

    return await idempotent(request, api_key_id=principal.key_id, respond=lambda: work(request, principal))

Errors raised here (400, 409, 422) are ApiErrors, so they come out in the envelope of the view that catches
them: the door's own for the doors, OpenAI's for compare and batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse

from config.api_errors import ApiError, InvalidRequest
from config.db import run_orm
from routing.pipeline.record import keep
from routing.services.idempotency import (
    MAX_KEY_CHARS,
    Claim,
    idempotency_claim,
    idempotency_complete,
    idempotency_fingerprint,
    idempotency_release,
)

logger = logging.getLogger(__name__)
HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
# A stream is kept for replay up to this size; a longer one is remembered as done, but not replayable.
MAX_STORED_BYTES = 4 * 1024 * 1024
# The headers that describe the answer itself; rate-limit headers describe the moment and are not replayed.
_KEPT = frozenset(
    {"content-type", "x-request-id", "request-id", "cache-control", "x-accel-buffering", "deprecation"}
)
Respond = Callable[[], Awaitable[HttpResponseBase]]


async def idempotent(request: HttpRequest, *, api_key_id: int, respond: Respond) -> HttpResponseBase:
    """The view's response, once per (API key, Idempotency-Key) for 24 hours.

    Without the header nothing changes and no query is made. With it: the first request claims the key and
    runs; its response under 400 is kept (a stream as it is relayed), an error releases the key so a
    corrected retry may use it again. A retry gets the kept response byte for byte with
    `Idempotent-Replayed: true`, without running, charging, logging or counting against a rate limit; one
    that arrives while the first still runs gets 409 with Retry-After; the same key with another body, 422.

    The first request runs to the end even if its client goes away, so the retry finds its outcome: a
    client that leaves before a stream's first byte has the stream read to its end and kept.
    """
    value = request.headers.get(HEADER)
    if value is None:
        return await respond()
    key = _valid_key(value)
    body = _raw_body(request)
    if body is None:
        return await respond()  # over the size limit: the view answers 413 and nothing runs
    request_id: str = request.request_id  # type: ignore[attr-defined]
    fingerprint = idempotency_fingerprint(
        method=request.method or "", path=request.get_full_path(), body=body
    )
    claiming = asyncio.ensure_future(
        run_orm(
            idempotency_claim, api_key_id=api_key_id, key=key, fingerprint=fingerprint, request_id=request_id
        )
    )
    keep(claiming)
    try:
        claim = await asyncio.shield(claiming)
    except asyncio.CancelledError:
        # The insert goes on in its thread: a key won for a request that will never run is given back.
        claiming.add_done_callback(_release_unused)
        raise
    if claim.record_id is None:
        return _answer_taken(claim, fingerprint)
    task = asyncio.ensure_future(_run_and_keep(claim.record_id, request_id, respond))
    keep(task)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_finish_abandoned)
        raise


def _valid_key(value: str) -> str:
    key = value.strip()
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise InvalidRequest(
            f"{HEADER} must be 1 to {MAX_KEY_CHARS} printable characters",
            param=HEADER,
            code="invalid_idempotency_key",
        )
    return key


def _raw_body(request: HttpRequest) -> bytes | None:
    declared = request.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > settings.ROUTER_MAX_BODY_BYTES:
        return None
    try:
        return request.body
    except RequestDataTooBig:
        return None


def _answer_taken(claim: Claim, fingerprint: str) -> HttpResponse:
    if claim.fingerprint != fingerprint:
        raise ApiError(
            f"This {HEADER} was used with a different request",
            status=422,
            param=HEADER,
            code="idempotency_key_reused",
        )
    if claim.outcome is None:
        raise ApiError(
            f"A request with this {HEADER} is still in progress; retry shortly",
            status=409,
            code="idempotency_key_in_progress",
            headers={"Retry-After": "1"},
        )
    if not claim.outcome.replayable:
        raise ApiError(
            f"The first outcome of this {HEADER} was a stream too long to keep; it cannot be replayed",
            status=409,
            code="idempotency_replay_unavailable",
        )
    response = HttpResponse(claim.outcome.body, status=claim.outcome.status_code)
    for name, header in claim.outcome.headers.items():
        response[name] = header
    response[REPLAYED] = "true"
    return response


async def _run_and_keep(record_id: int, request_id: str, respond: Respond) -> HttpResponseBase:
    try:
        response = await respond()
    except BaseException:
        await _release(record_id)
        raise
    if response.status_code >= 400:
        await _release(record_id)
    elif isinstance(response, StreamingHttpResponse):
        _keep_stream(response, record_id, request_id)
    elif isinstance(response, HttpResponse):
        await _store(record_id, response.status_code, _kept_headers(response, request_id), response.content)
    else:  # a file response: nothing of ours answers with one; never charge twice, so keep the key taken
        logger.warning("idempotency: %s is not kept for replay", type(response).__name__)
    return response


def _keep_stream(response: StreamingHttpResponse, record_id: int, request_id: str) -> None:
    """Relays the stream as it is and keeps a copy: stored when it ends, however it ends (a client that
    left mid-stream was charged for what was generated, and that is the first outcome)."""
    status, headers = response.status_code, _kept_headers(response, request_id)
    source: AsyncIterator[bytes] = response.streaming_content  # type: ignore[assignment]

    async def copied() -> AsyncIterator[bytes]:
        pieces: list[bytes] = []
        size = 0
        try:
            async for piece in source:
                if size <= MAX_STORED_BYTES:
                    size += len(piece)
                    pieces.append(piece)
                yield piece
        except BaseException:
            # Cancelled (the client left): the copy is written by a task of its own.
            stored = _store(record_id, status, headers, b"".join(pieces), size <= MAX_STORED_BYTES)
            keep(asyncio.ensure_future(stored))
            raise
        await _store(record_id, status, headers, b"".join(pieces), size <= MAX_STORED_BYTES)

    response.streaming_content = copied()


def _release_unused(claiming: asyncio.Task[Claim]) -> None:
    if claiming.cancelled() or claiming.exception() is not None:
        return
    record_id = claiming.result().record_id
    if record_id is not None:
        keep(asyncio.ensure_future(_release(record_id)))


def _finish_abandoned(task: asyncio.Task[HttpResponseBase]) -> None:
    """The client left while the first request ran: a stream it opened is read to its end and kept."""
    if task.cancelled() or task.exception() is not None:
        return
    response = task.result()
    if isinstance(response, StreamingHttpResponse):
        keep(asyncio.ensure_future(_drain(response)))


async def _drain(response: StreamingHttpResponse) -> None:
    async for _ in response.streaming_content:  # type: ignore[union-attr]
        pass


def _kept_headers(response: HttpResponseBase, request_id: str) -> dict[str, str]:
    headers = {
        name: value
        for name, value in response.items()
        if name.lower() in _KEPT or name.lower().startswith("x-router-")
    }
    if not any(name.lower() == "x-request-id" for name in headers):
        headers["X-Request-Id"] = request_id  # compare and batch get theirs from the middleware, later
    return headers


async def _store(
    record_id: int, status: int, headers: dict[str, str], body: bytes, replayable: bool = True
) -> None:
    # A failure here leaves the key in progress until it expires: retries get 409, never a second charge.
    try:
        await run_orm(
            idempotency_complete,
            record_id=record_id,
            status_code=status,
            headers=headers,
            body=body,
            replayable=replayable,
        )
    except Exception:
        logger.exception("idempotency: the outcome of record %s could not be kept", record_id)


async def _release(record_id: int) -> None:
    try:
        await run_orm(idempotency_release, record_id=record_id)
    except Exception:
        logger.exception("idempotency: record %s could not be released", record_id)
