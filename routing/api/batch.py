"""POST /v1/chat/batch (Celery fan-out; waits, or 202 at once) and GET /v1/chat/batch/{id}: async views."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.authentication import Principal
from config.api_errors import ApiError, api_methods
from config.db import run_orm
from routing import engine
from routing.api.body import parse_json_body
from routing.api.compare import authenticated, json_response, validated
from routing.api.doors import caller_of
from routing.api.idempotency import idempotent
from routing.api.serializers import MessageSerializer, StrictBooleanField
from routing.pipeline.limits import rate_admit_fanout
from routing.ratelimit import rate_limit_release, rate_limits_of
from routing.services.batch_lanes import batch_request_id
from routing.services.batches import (
    MAX_ITEMS,
    batch_create,
    batch_get,
    batch_inputs,
    batch_new_id,
    batch_summary,
    batch_wait,
)


@extend_schema_field({"oneOf": [{"type": "string", "maxLength": 200}, {"type": "integer"}]})
class BatchRequestIdField(serializers.Field):
    """A client's id for an item: a string or an integer, kept as a string."""

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, bool) or not isinstance(data, str | int):
            raise serializers.ValidationError("id must be a string or an integer")
        text = str(data)
        if not 1 <= len(text) <= 200:
            raise serializers.ValidationError("id must be 1 to 200 characters")
        return text

    def to_representation(self, value: Any) -> str:
        return str(value)


class BatchInputSerializer(serializers.Serializer):
    class ItemSerializer(serializers.Serializer):
        messages = MessageSerializer(many=True, allow_empty=False, max_length=10_000)  # type: ignore[call-arg]
        id = BatchRequestIdField(required=False, allow_null=True)
        model = serializers.CharField(required=False, max_length=200, allow_null=True)
        temperature = serializers.FloatField(min_value=0, max_value=2, required=False, allow_null=True)
        max_tokens = serializers.IntegerField(
            min_value=1, max_value=2_000_000, required=False, allow_null=True
        )

    requests = ItemSerializer(many=True, allow_empty=False, max_length=MAX_ITEMS)  # type: ignore[call-arg]
    model = serializers.CharField(required=False, max_length=200, allow_null=True)
    mode = serializers.ChoiceField(choices=engine.MODES, default=engine.MODE_MANUAL)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False, allow_null=True)
    max_tokens = serializers.IntegerField(min_value=1, max_value=2_000_000, required=False, allow_null=True)
    wait = StrictBooleanField(default=True)


@csrf_exempt
@api_methods("POST")
async def chat_batch(request: HttpRequest) -> HttpResponseBase:
    principal = await authenticated(request)
    return await idempotent(request, api_key_id=principal.key_id, respond=lambda: _batch(request, principal))


async def _batch(request: HttpRequest, principal: Principal) -> HttpResponseBase:
    data = parse_json_body(request)
    fields = validated(BatchInputSerializer, data)
    assert isinstance(data, dict)
    requests = [
        {**dict(item), "messages": [dict(m) for m in raw["messages"]]}
        for item, raw in zip(fields["requests"], data["requests"], strict=True)
    ]
    model = fields.get("model")
    mode = engine.MODE_COST if model == engine.AUTO_MODEL else fields["mode"]
    params: dict[str, Any] = {
        "requests": requests,
        "model": None if model == engine.AUTO_MODEL else model,
        "mode": mode,
        "temperature": fields.get("temperature"),
        "max_tokens": fields.get("max_tokens"),
    }
    inputs = await run_orm(batch_inputs, **params)  # a bad item is a 400 here, before anything is counted
    # A batch of N is N requests with their N token estimates against every rate limit, all admitted or none
    # (429): its items run in workers, past any door's check, and settle under the ids counted here.
    batch_id = batch_new_id()
    admitted = await rate_admit_fanout(
        limits=rate_limits_of(principal),
        caller=caller_of(principal),
        inputs=inputs,
        request_ids=[batch_request_id(batch_id, index) for index in range(len(inputs))],
    )
    headers = admitted.headers if admitted else {}
    try:
        batch = await run_orm(
            batch_create,
            user_id=principal.user_id,
            api_key_id=principal.key_id,
            cache_group=principal.cache_group,
            batch_id=batch_id,
            **params,
        )
    except ApiError as exc:
        await rate_limit_release(admitted)  # refused (400): none of its items will run
        exc.headers = {**headers, **exc.headers}
        raise
    if not fields["wait"]:
        return json_response(batch_summary(batch), status=202, headers=headers)
    done = await batch_wait(batch_id=batch.id)
    # Not done within ROUTER_BATCH_WAIT_S: 202 with the progress so far, to be polled as with wait: false.
    body = await run_orm(batch_get, user_id=principal.user_id, batch_id=batch.id)
    return json_response(body, status=200 if done else 202, headers=headers)


@api_methods("GET")
async def chat_batch_detail(request: HttpRequest, batch_id: str) -> HttpResponseBase:
    principal = await authenticated(request)  # clients poll this: not a request against the limits
    return json_response(await run_orm(batch_get, user_id=principal.user_id, batch_id=batch_id))
