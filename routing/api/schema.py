"""OpenAPI for what drf-spectacular cannot see: the async gateway views, and the error envelope on every /v1 call.

/v1/chat/completions (and compare and batch) are plain Django async views, invisible to drf-spectacular. The
POSTPROCESSING_HOOKS entry `add_gateway_paths` documents them through stand-in APIViews that carry the real
request serializers, so the schema follows routing/api/serializers.py. It then gives every /v1 operation the
error responses it can answer, each in the envelope of config/api_errors.py, so a schema-driven client (or
fuzzer) can check errors too.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.urls import NoReverseMatch, reverse
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.views import APIView

from routing.api.schema_doors import ANTHROPIC_ERROR, ANTHROPIC_REF, anthropic_errors, door_operations
from routing.api.serializers import CompletionInputSerializer
from routing.usage import UsageSerializer

ERROR_REF = {"$ref": "#/components/schemas/Error"}
JSON = "application/json"
# One server-sent event (OpenAPI 3.0 has `schema` describe each event of a stream): a chat.completion.chunk,
# a final error object, or [DONE].
SSE_EVENT = {
    "type": "object",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
    "required": ["data"],
}

# What any /v1 call can answer besides its success, and what only some can.
COMMON_ERRORS = {
    "400": "Malformed JSON, a schema violation or an out-of-range value; `param` names the field",
    "401": "Missing, unknown, revoked or expired API key",
    "429": "Over a key's or team's requests or tokens per minute, or too many bad keys; see Retry-After",
    "500": "A bug: still the envelope, never a traceback",
    "503": "The database is unavailable; retry shortly",
}
BODY_ERRORS = {"413": "The body is larger than ROUTER_MAX_BODY_BYTES"}
# The spending POSTs: each honours an Idempotency-Key (routing/api/idempotency.py).
SPENDING = ("/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/chat/compare", "/v1/chat/batch")
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "The same key from the same API key within 24 hours returns the first outcome (with "
    "`Idempotent-Replayed: true`) and never charges twice. An error outcome releases the key.",
}
IDEMPOTENCY_ERRORS = {
    "409": "idempotency_key_in_progress: the first request with this Idempotency-Key is still running (see "
    "Retry-After); or idempotency_replay_unavailable: its stream was too long to keep",
    "422": "idempotency_key_reused: this Idempotency-Key was used with a different request",
}
DETAIL_ERRORS = {"404": "Unknown id, or another user's"}
COMPLETION_ERRORS = {
    "402": "The worst-case cost does not fit the remaining budget (budget detail fields in `error`)",
    "413": "The body is larger than ROUTER_MAX_BODY_BYTES, or the prompt fits no candidate's context window",
    "502": "Every attempt at every candidate failed; `error.attempts` lists them",
    "504": "The provider did not answer within the timeout",
}


class AttemptSerializer(serializers.Serializer):
    """One provider call of a request (also listed in a 502's `error.attempts`)."""

    model = serializers.CharField()
    provider = serializers.CharField()
    status = serializers.CharField()
    latency_ms = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    message = serializers.CharField(required=False)


def _money(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=30, decimal_places=10, coerce_to_string=False, **kwargs)


class CompletionMessageSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField(allow_null=True)
    tool_calls = serializers.ListField(child=serializers.DictField(), required=False)


class CompletionChoiceSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    message = CompletionMessageSerializer()
    finish_reason = serializers.CharField()


class CompletionSerializer(serializers.Serializer):
    """The non-streaming answer of api.md (a stream is text/event-stream of chat.completion.chunk events)."""

    id = serializers.CharField()
    object = serializers.CharField()
    created = serializers.IntegerField()
    model = serializers.CharField()
    provider = serializers.CharField()
    choices = CompletionChoiceSerializer(many=True)
    content = serializers.CharField(allow_null=True)
    finish_reason = serializers.CharField()
    usage = UsageSerializer()
    latency_ms = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    selection_mode = serializers.CharField()
    models_considered = serializers.IntegerField()
    cached = serializers.BooleanField()
    attempts = AttemptSerializer(many=True)
    budget_fitted = serializers.BooleanField(required=False)
    max_tokens_applied = serializers.IntegerField(required=False)


HELLO_EXAMPLE = OpenApiExample(
    "A question to one model",
    value={
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
    },
    request_only=True,
)


class ChatCompletionsDoc(APIView):
    # Stands in for routing.api.completions.chat_completions in the schema; never routed.
    @extend_schema(
        operation_id="v1_chat_completions_create",
        summary="Chat completion (OpenAI-compatible), routed, budgeted and logged",
        description="See api.md: the OpenAI Chat Completions API plus the router's fields (mode, models, "
        "fallbacks, provider_filter, max_cost, cache, budget_policy).",
        request=CompletionInputSerializer,
        responses={200: CompletionSerializer},
        examples=[HELLO_EXAMPLE],
        tags=["v1"],
    )
    def post(self, request: Any) -> Any:
        raise NotImplementedError


def _loose(name: str, fields: list[str]) -> serializers.Serializer:
    """A response documented by its top-level fields only (owned by other modules, shapes in api.md)."""
    return inline_serializer(name, {f: serializers.JSONField(required=False) for f in fields})


COMPARISON = _loose("Comparison", ["comparison_id", "results", "total_cost_usd", "created_at", "summary"])
BATCH = _loose(
    "Batch", ["batch_id", "status", "total_requests", "successful", "failed", "results", "created_at"]
)


class CompareDetailDoc(APIView):
    @extend_schema(
        operation_id="v1_chat_compare_retrieve",
        responses={200: COMPARISON},
        tags=["v1"],
    )
    def get(self, request: Any, comparison_id: str) -> Any:
        raise NotImplementedError


class BatchDetailDoc(APIView):
    @extend_schema(
        operation_id="v1_chat_batch_retrieve",
        responses={200: BATCH},
        tags=["v1"],
    )
    def get(self, request: Any, batch_id: str) -> Any:
        raise NotImplementedError


def _compare_doc() -> type[APIView]:
    from routing.api.compare import CompareInputSerializer

    class CompareDoc(APIView):
        @extend_schema(
            operation_id="v1_chat_compare_create",
            request=CompareInputSerializer,
            responses={200: COMPARISON},
            tags=["v1"],
        )
        def post(self, request: Any) -> Any:
            raise NotImplementedError

    return CompareDoc


def _batch_doc() -> type[APIView]:
    from routing.api.batch import BatchInputSerializer

    class BatchDoc(APIView):
        @extend_schema(
            operation_id="v1_chat_batch_create",
            request=BatchInputSerializer,
            responses={
                200: BATCH,
                202: OpenApiResponse(BATCH, description="Queued or still running"),
            },
            tags=["v1"],
        )
        def post(self, request: Any) -> Any:
            raise NotImplementedError

    return BatchDoc


def _routed(name: str, *args: str) -> bool:
    try:
        reverse(name, args=args)
    except NoReverseMatch:
        return False
    return True


def _gateway_operations() -> list[tuple[str, str, str, Any, dict[str, str]]]:
    """(path, path regex, method, stand-in view, error responses) for every gateway view routed here."""
    operations: list[tuple[str, str, str, Any, dict[str, str]]] = [
        (
            "/v1/chat/completions",
            r"^v1/chat/completions$",
            "POST",
            ChatCompletionsDoc,
            COMPLETION_ERRORS,
        )
    ]
    # Compare and batch are documented once their views are routed (their modules may not exist yet).
    if _routed("v1-chat-compare"):
        with contextlib.suppress(ImportError):
            operations.append(
                ("/v1/chat/compare", r"^v1/chat/compare$", "POST", _compare_doc(), COMPLETION_ERRORS)
            )
    if _routed("v1-chat-compare-detail", "x"):
        operations.append(
            (
                "/v1/chat/compare/{comparison_id}",
                r"^v1/chat/compare/(?P<comparison_id>[^/]+)$",
                "GET",
                CompareDetailDoc,
                DETAIL_ERRORS,
            )
        )
    if _routed("v1-chat-batch"):
        with contextlib.suppress(ImportError):
            operations.append(("/v1/chat/batch", r"^v1/chat/batch$", "POST", _batch_doc(), COMPLETION_ERRORS))
    if _routed("v1-chat-batch-detail", "x"):
        operations.append(
            (
                "/v1/chat/batch/{batch_id}",
                r"^v1/chat/batch/(?P<batch_id>[^/]+)$",
                "GET",
                BatchDetailDoc,
                DETAIL_ERRORS,
            )
        )
    operations += door_operations(COMPLETION_ERRORS)
    return operations


def _error_responses(operation: dict[str, Any], errors: dict[str, str]) -> None:
    responses = operation.setdefault("responses", {})
    for status, description in {**COMMON_ERRORS, **errors}.items():
        responses.setdefault(status, {"description": description, "content": {JSON: {"schema": ERROR_REF}}})


def add_gateway_paths(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the gateway's async views, and the error envelope everywhere."""
    extra_errors: dict[str, dict[str, str]] = {}
    for path, path_regex, method, doc_view, errors in _gateway_operations():
        view = generator.create_view(doc_view.as_view(), method)
        operation = view.schema.get_operation(path, path_regex, "/v1", method, generator.registry)
        if path in ("/v1/chat/completions", "/v1/messages", "/v1/responses"):
            ok = operation["responses"]["200"]
            ok["description"] = "The answer; with `stream: true`, the dialect's server-sent events"
            ok["content"]["text/event-stream"] = {"schema": SSE_EVENT}
        if path.startswith("/v1/messages"):
            anthropic_errors(operation)
        if path in SPENDING and method == "POST":
            _idempotency(operation, ANTHROPIC_REF if path == "/v1/messages" else ERROR_REF)
        result["paths"].setdefault(path, {})[method.lower()] = operation
        extra_errors[path] = errors
    generator.registry.register_on_missing(_error_component(generator))
    result["components"] = generator.registry.build(spectacular_settings.APPEND_COMPONENTS)
    result["components"]["schemas"]["AnthropicError"] = ANTHROPIC_ERROR

    for path, operations in result["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            errors = dict(extra_errors.get(path, {}))
            if "{" in path:
                errors.update(DETAIL_ERRORS)
            if method in ("post", "put", "patch"):
                errors = {**BODY_ERRORS, **errors}
            _error_responses(operation, errors)
    return result


def _idempotency(operation: dict[str, Any], envelope: dict[str, str]) -> None:
    operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
    responses = operation.setdefault("responses", {})
    for status, description in IDEMPOTENCY_ERRORS.items():
        responses[status] = {"description": description, "content": {JSON: {"schema": envelope}}}
    replayed = {"description": "`true` on a replay of the key's first outcome", "schema": {"type": "string"}}
    for status, response in responses.items():
        if status.startswith("2"):
            response.setdefault("headers", {})["Idempotent-Replayed"] = replayed


def _error_component(generator: Any) -> Any:
    """The envelope as the `Error` component (extra fields such as `attempts` are allowed)."""
    from drf_spectacular.plumbing import ResolvedComponent

    schema = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": "string", "nullable": True},
                    "code": {"type": "string"},
                    "attempts": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}},
                },
                "required": ["message", "type", "param", "code"],
            }
        },
        "required": ["error"],
    }
    return ResolvedComponent(name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=schema)
