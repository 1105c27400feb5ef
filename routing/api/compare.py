"""POST /v1/chat/compare (one Celery task per model, gathered) and GET /v1/chat/compare/{id}: async views."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from rest_framework import serializers

from accounts.authentication import Principal, aprincipal_for_key, key_from_headers
from config.api_errors import (
    ApiError,
    InvalidRequest,
    api_error_from_exception,
    api_methods,
)
from config.db import run_orm
from config.rendering import dumps
from routing.api.body import parse_json_body
from routing.api.doors import caller_of
from routing.api.idempotency import idempotent
from routing.api.serializers import MessageSerializer
from routing.pipeline.limits import rate_admit_fanout
from routing.ratelimit import rate_limit_release, rate_limits_of
from routing.services.comparisons import (
    MAX_MODELS,
    comparison_get,
    comparison_inputs,
    comparison_new_id,
    comparison_request_id,
    comparison_start,
    comparison_wait,
)


def validated(serializer_class: type[serializers.Serializer], data: object) -> dict[str, Any]:
    """The body through a serializer: a JSON object, valid, or a 400 envelope naming the first bad field."""
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object", code="invalid_json")
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise api_error_from_exception(serializers.ValidationError(serializer.errors)) or InvalidRequest(
            "Invalid request"
        )
    return dict(serializer.validated_data)


async def authenticated(request: HttpRequest) -> Principal:
    return await aprincipal_for_key(key_from_headers(request))


def json_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    response = HttpResponse(dumps(body), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class CompareInputSerializer(serializers.Serializer):
    messages = MessageSerializer(many=True, allow_empty=False, max_length=10_000)  # type: ignore[call-arg]
    models = serializers.ListField(child=serializers.CharField(max_length=200), max_length=100)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False, allow_null=True)
    max_tokens = serializers.IntegerField(min_value=1, max_value=2_000_000, required=False, allow_null=True)
    top_p = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True)

    def validate_models(self, value: list[str]) -> list[str]:
        if not 2 <= len(value) <= MAX_MODELS:
            raise serializers.ValidationError(f"list 2 to {MAX_MODELS} distinct models")
        return value


@csrf_exempt
@api_methods("POST")
async def chat_compare(request: HttpRequest) -> HttpResponseBase:
    principal = await authenticated(request)
    return await idempotent(
        request, api_key_id=principal.key_id, respond=lambda: _compare(request, principal)
    )


async def _compare(request: HttpRequest, principal: Principal) -> HttpResponseBase:
    data = parse_json_body(request)
    fields = validated(CompareInputSerializer, data)
    assert isinstance(data, dict)
    params: dict[str, Any] = {
        "messages": [dict(m) for m in data["messages"]],
        "temperature": fields.get("temperature"),
        "max_tokens": fields.get("max_tokens"),
        "top_p": fields.get("top_p"),
    }
    models = fields["models"]
    # One request per model, with its token estimate, against every rate limit, all admitted or none (429);
    # counted under the ids its requests will run with, so each settles to its actual tokens.
    comparison_id = comparison_new_id()
    admitted = await rate_admit_fanout(
        limits=rate_limits_of(principal),
        caller=caller_of(principal),
        inputs=comparison_inputs(models=models, **params),
        request_ids=[comparison_request_id(comparison_id, index) for index in range(len(models))],
    )
    try:
        comparison = await run_orm(
            comparison_start,
            user_id=principal.user_id,
            models=models,
            api_key_id=principal.key_id,
            cache_group=principal.cache_group,
            comparison_id=comparison_id,
            **params,
        )
    except ApiError as exc:
        await rate_limit_release(admitted)  # refused (400): none of its requests will run
        exc.headers = {**(admitted.headers if admitted else {}), **exc.headers}
        raise
    await comparison_wait(comparison_id=comparison.id)
    body = await run_orm(comparison_get, user_id=principal.user_id, comparison_id=comparison.id)
    return json_response(body, headers=admitted.headers if admitted else None)


@api_methods("GET")
async def chat_compare_detail(request: HttpRequest, comparison_id: str) -> HttpResponseBase:
    principal = await authenticated(request)  # the playground polls this: not a request against the limits
    body = await run_orm(comparison_get, user_id=principal.user_id, comparison_id=comparison_id)
    return json_response(body)
