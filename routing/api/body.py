"""The JSON body reader every /v1 POST shares: 413 and 400 before anything else happens."""

from __future__ import annotations

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from config.api_errors import InvalidRequest, PayloadTooLarge
from config.parsers import json_body_problem


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
