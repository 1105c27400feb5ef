"""One async view body for every door: authenticate, parse with the door, run the pipeline (which admits the
rate limits once the request is planned), render; once per Idempotency-Key (routing.api.idempotency).

Errors, whenever they happen before the first byte, answer in the door's own envelope.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse

from accounts.authentication import Principal, aprincipal_for_key, key_from_headers
from config.api_errors import ApiError, InvalidRequest, internal_error
from config.rendering import dumps
from config.tracing import tracer
from routing.access import AccessLine, access_caller, access_finish, access_open
from routing.api.body import parse_json_body
from routing.api.idempotency import idempotent
from routing.doors.base import Door, DoorCodec
from routing.doors.options import apply_router_headers
from routing.pipeline.complete import completion_create, completion_stream_open
from routing.pipeline.types import Caller, CompletionInput
from routing.ratelimit import rate_limits_of

logger = logging.getLogger(__name__)
# A door's own step between parsing and running (the Responses door loads previous_response_id here).
Prepare = Callable[[CompletionInput, Caller], Awaitable[CompletionInput]]
# What answers a parsed request: runs the pipeline and renders (the request id is the last argument).
Answer = Callable[[CompletionInput, Caller, str], Awaitable[HttpResponseBase]]


def caller_of(principal: Principal) -> Caller:
    """The pipeline's caller: who pays, whose cache, and the rate limits it admits the request against."""
    return Caller(
        user_id=principal.user_id,
        api_key_id=principal.key_id,
        cache_group=principal.cache_group,
        team_id=principal.team_id,
        rate_limits=rate_limits_of(principal),
    )


def door_error_response(door: DoorCodec, error: ApiError, request_id: str) -> HttpResponse:
    status, body = door.error_body(error)
    if "request_id" in body and body["request_id"] is None:
        body["request_id"] = request_id  # Anthropic's envelope names the request
    response = HttpResponse(dumps(body), status=status, content_type="application/json")
    for name, value in error.headers.items():
        response[name] = value
    response["X-Request-Id"] = request_id
    response["request-id"] = request_id  # what the anthropic SDK reads into APIStatusError.request_id
    return response


async def serve_door(
    door: Door, request: HttpRequest, *, span: str, prepare: Prepare | None = None
) -> HttpResponseBase:
    """A completion door: the answer rendered whole, or streamed."""
    return await serve_parsed(
        door, request, span=span, prepare=prepare, answer=functools.partial(_complete, door)
    )


async def serve_parsed(
    door: DoorCodec, request: HttpRequest, *, span: str, answer: Answer, prepare: Prepare | None = None
) -> HttpResponseBase:
    """Any door: authenticated, limited and parsed here, answered by `answer`, errors in the door's envelope."""
    request_id: str = request.request_id  # type: ignore[attr-defined]
    line = access_open(request_id=request_id, door=door.name, method=request.method or "", path=request.path)
    response: HttpResponseBase
    with tracer.start_as_current_span(span, attributes={"router.request_id": request_id}):
        try:
            principal = await aprincipal_for_key(key_from_headers(request))
            access_caller(
                key_prefix=principal.key_prefix, user_id=principal.user_id, team_id=principal.team_id
            )
            response = await idempotent(
                request,
                api_key_id=principal.key_id,
                respond=lambda: _parsed_and_answered(door, request, principal, request_id, prepare, answer),
            )
        except ApiError as exc:
            response = door_error_response(door, exc, request_id)
        except Exception as exc:  # noqa: BLE001 - a bug still answers in the door's envelope, without a traceback
            response = door_error_response(door, internal_error(exc), request_id)
    if isinstance(response, StreamingHttpResponse):
        response.streaming_content = _finishing(response.streaming_content, line, response.status_code)
    else:
        access_finish(line, response.status_code)
    return response


async def _finishing(body: Any, line: AccessLine, status: int) -> AsyncIterator[bytes]:
    """The stream's bytes; the access line is finished when the last one went out (or the client left)."""
    try:
        async for chunk in body:
            yield chunk
    finally:
        access_finish(line, status, streamed=True)


async def _parsed_and_answered(
    door: DoorCodec,
    request: HttpRequest,
    principal: Principal,
    request_id: str,
    prepare: Prepare | None,
    answer: Answer,
) -> HttpResponseBase:
    inp, caller = await _parse(door, request, principal, prepare)
    return await answer(inp, caller, request_id)


async def _parse(
    door: DoorCodec, request: HttpRequest, principal: Principal, prepare: Prepare | None
) -> tuple[CompletionInput, Caller]:
    body = parse_json_body(request)
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object", code="invalid_json")
    inp = door.parse(body, request.headers)
    apply_router_headers(inp, request.headers, body if door.name == "chat" else {})
    caller = caller_of(principal)  # rate limits are admitted once the request is planned (its tokens known)
    if prepare is not None:
        inp = await prepare(inp, caller)
    return inp, caller


def with_headers(response: HttpResponseBase, headers: dict[str, str]) -> HttpResponseBase:
    for name, value in headers.items():
        response[name] = value
    return response


async def _complete(door: Door, inp: CompletionInput, caller: Caller, request_id: str) -> HttpResponseBase:
    if inp.stream:
        opened = await completion_stream_open(caller=caller, inp=inp, request_id=request_id)
        renderer = door.stream_renderer(opened.meta)
        response: HttpResponseBase = StreamingHttpResponse(
            opened.body(renderer), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return with_headers(response, opened.headers)
    answered = await completion_create(caller=caller, inp=inp, request_id=request_id)
    response = HttpResponse(dumps(door.render(answered.completion)), content_type="application/json")
    return with_headers(response, answered.headers)
