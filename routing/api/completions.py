"""POST /v1/chat/completions: async end to end (plain Django async view; DRF has no async views)."""

from __future__ import annotations

import logging

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import ValidationError

from accounts.authentication import aprincipal_for_key, key_from_headers
from config.api_errors import (
    InvalidRequest,
    PayloadTooLarge,
    api_error_from_exception,
    api_methods,
)
from config.parsers import json_body_problem
from config.rendering import dumps
from config.tracing import tracer
from routing.api.serializers import completion_input_validate
from routing.ratelimit import rate_limit_check
from routing.services.completions import Caller, CompletionInput, completion_create, completion_stream_open

logger = logging.getLogger(__name__)


def parse_json_body(request: HttpRequest) -> object:
    """The body as JSON, or 413 / 400 before anything else happens (see config.parsers for the limits)."""
    declared = request.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > settings.ROUTER_MAX_BODY_BYTES:
        raise PayloadTooLarge(f"Request body is larger than {settings.ROUTER_MAX_BODY_BYTES} bytes")
    try:
        body = request.body
    except RequestDataTooBig:
        raise PayloadTooLarge(f"Request body is larger than {settings.ROUTER_MAX_BODY_BYTES} bytes") from None
    if len(body) > settings.ROUTER_MAX_BODY_BYTES:
        raise PayloadTooLarge(f"Request body is larger than {settings.ROUTER_MAX_BODY_BYTES} bytes")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"Malformed JSON body: {exc}", code="invalid_json") from None
    problem = json_body_problem(data)
    if problem is not None:
        message, param = problem
        raise InvalidRequest(f"{param}: {message}" if param else message, param=param, code="invalid_value")
    return data


def completion_input(request: HttpRequest) -> CompletionInput:
    data = parse_json_body(request)
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object", code="invalid_json")
    try:
        return completion_input_validate(
            data,
            cache_control=request.headers.get("Cache-Control", ""),
            client_request_id=request.headers.get("X-Client-Request-Id", ""),
        )
    except ValidationError as exc:
        raise api_error_from_exception(exc) or InvalidRequest("Invalid request") from None


@csrf_exempt
@api_methods("POST")
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    request_id: str = request.request_id  # type: ignore[attr-defined]
    with tracer.start_as_current_span("chat.completion", attributes={"router.request_id": request_id}):
        return await _chat_completions(request, request_id)


async def _chat_completions(request: HttpRequest, request_id: str) -> HttpResponseBase:
    principal = await aprincipal_for_key(key_from_headers(request))
    await rate_limit_check(principal)
    inp = completion_input(request)
    caller = Caller(user_id=principal.user_id, api_key_id=principal.key_id, cache_group=principal.cache_group)
    if inp.stream:
        opened = await completion_stream_open(caller=caller, inp=inp, request_id=request_id)
        response: HttpResponseBase = StreamingHttpResponse(opened.body, content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        for name, value in opened.headers.items():
            response[name] = value
        return response
    result = await completion_create(caller=caller, inp=inp, request_id=request_id)
    response = HttpResponse(dumps(result.body), content_type="application/json")
    for name, value in result.headers.items():
        response[name] = value
    return response
