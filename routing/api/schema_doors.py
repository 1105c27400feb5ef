"""The OpenAPI operations of the Messages, Responses and embeddings doors (their bodies are the dialects' own)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.views import APIView

# Anthropic's envelope: the messages door answers every error in it (ingress-wire-formats.md §2.5).
ANTHROPIC_ERROR = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["error"]},
        "error": {
            "type": "object",
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
            "required": ["type", "message"],
        },
        "request_id": {"type": "string", "nullable": True},
    },
    "required": ["type", "error"],
}
ANTHROPIC_REF = {"$ref": "#/components/schemas/AnthropicError"}
ANTHROPIC_STATUSES = {
    "400": "invalid_request_error: a malformed body or header, or an out-of-range value",
    "401": "authentication_error: a missing, unknown, revoked or expired API key",
    "402": "billing_error: the worst-case cost does not fit the remaining budget",
    "404": "not_found_error: an unknown model",
    "413": "request_too_large: the body is larger than ROUTER_MAX_BODY_BYTES",
    "429": "rate_limit_error: a key's or team's requests or tokens per minute; see Retry-After",
    "500": "api_error: a bug, still in the envelope",
    "502": "api_error: every attempt failed for a reason a retry will not mend",
    "503": "api_error: the database is unavailable",
    "504": "timeout_error: the provider did not answer in time",
    "529": "overloaded_error: every candidate was overloaded or failing",
}


def _loose(name: str, required: list[str], optional: list[str]) -> serializers.Serializer:
    fields: dict[str, serializers.Field] = {f: serializers.JSONField() for f in required}
    fields.update({f: serializers.JSONField(required=False) for f in optional})
    return inline_serializer(name, fields)


MESSAGE_REQUEST = _loose(
    "MessagesRequest",
    ["model", "max_tokens", "messages"],
    [
        "system",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
    ],
)
MESSAGE = _loose("Message", ["id", "type", "role", "model", "content", "stop_reason", "usage"], ["router"])
COUNT_REQUEST = _loose(
    "MessagesCountTokensRequest", ["model", "messages"], ["system", "tools", "tool_choice"]
)
COUNT = inline_serializer("MessageTokensCount", {"input_tokens": serializers.IntegerField()})
RESPONSE_REQUEST = _loose(
    "ResponsesRequest",
    ["model", "input"],
    [
        "instructions",
        "tools",
        "tool_choice",
        "max_output_tokens",
        "temperature",
        "top_p",
        "text",
        "reasoning",
        "stream",
        "store",
        "previous_response_id",
        "metadata",
        "parallel_tool_calls",
        "include",
    ],
)
RESPONSE = _loose(
    "Response", ["id", "object", "created_at", "status", "model", "output"], ["usage", "router"]
)
DELETED = _loose("ResponseDeleted", ["id", "object", "deleted"], [])
EMBEDDINGS_REQUEST = _loose(
    "EmbeddingsRequest", ["model", "input"], ["encoding_format", "dimensions", "user"]
)
EMBEDDINGS = _loose("EmbeddingList", ["object", "data", "model", "usage"], [])


class MessagesDoc(APIView):
    @extend_schema(
        operation_id="v1_messages_create",
        summary="Anthropic Messages API: any catalog model, routed, budgeted and logged",
        description="The anthropic SDK and Claude Code work unchanged (x-api-key or Bearer, anthropic-version "
        "required). Claude models get the body natively; others are translated. Streams are Anthropic's events.",
        request=MESSAGE_REQUEST,
        responses={200: MESSAGE},
        examples=[
            OpenApiExample(
                "A question",
                value={
                    "model": "claude-sonnet-4.5",
                    "max_tokens": 256,
                    "messages": [{"role": "user", "content": "Hi"}],
                },
                request_only=True,
            )
        ],
        tags=["v1"],
    )
    def post(self, request: Any) -> Any:
        raise NotImplementedError


class CountTokensDoc(APIView):
    @extend_schema(
        operation_id="v1_messages_count_tokens", request=COUNT_REQUEST, responses={200: COUNT}, tags=["v1"]
    )
    def post(self, request: Any) -> Any:
        raise NotImplementedError


class ResponsesDoc(APIView):
    @extend_schema(
        operation_id="v1_responses_create",
        summary="OpenAI Responses API: any catalog model, routed, budgeted and logged",
        description="client.responses.create and the Agents SDK work unchanged. OpenAI models go to OpenAI's "
        "/v1/responses natively; others are translated. store keeps the answer for GET and previous_response_id.",
        request=RESPONSE_REQUEST,
        responses={200: RESPONSE},
        tags=["v1"],
    )
    def post(self, request: Any) -> Any:
        raise NotImplementedError


class ResponseDetailDoc(APIView):
    @extend_schema(operation_id="v1_responses_retrieve", responses={200: RESPONSE}, tags=["v1"])
    def get(self, request: Any, response_id: str) -> Any:
        raise NotImplementedError

    @extend_schema(operation_id="v1_responses_delete", responses={200: DELETED}, tags=["v1"])
    def delete(self, request: Any, response_id: str) -> Any:
        raise NotImplementedError


class EmbeddingsDoc(APIView):
    @extend_schema(
        operation_id="v1_embeddings_create",
        summary="OpenAI embeddings: any embedding model, budgeted, logged and cached",
        description="client.embeddings.create and LangChain's OpenAIEmbeddings work unchanged: input a string, up "
        "to 2,048 strings or token arrays (OpenAI models only); encoding_format float or base64 (little-endian "
        "float32); dimensions. OpenAI models get the request as sent, Gemini's batchEmbedContents in chunks of 100 "
        "(usage estimated: X-Router-Usage-Estimated). A chat model is a 400.",
        request=EMBEDDINGS_REQUEST,
        responses={200: EMBEDDINGS},
        examples=[
            OpenApiExample(
                "Two texts",
                value={"model": "text-embedding-3-small", "input": ["a cat", "a dog"]},
                request_only=True,
            )
        ],
        tags=["v1"],
    )
    def post(self, request: Any) -> Any:
        raise NotImplementedError


def door_operations(errors: dict[str, str]) -> list[tuple[str, str, str, Any, dict[str, str]]]:
    """(path, regex, method, stand-in view, error responses), as schema._gateway_operations lists them."""
    detail = r"^v1/responses/(?P<response_id>[^/]+)$"
    return [
        ("/v1/messages", r"^v1/messages$", "POST", MessagesDoc, {}),
        ("/v1/messages/count_tokens", r"^v1/messages/count_tokens$", "POST", CountTokensDoc, {}),
        ("/v1/responses", r"^v1/responses$", "POST", ResponsesDoc, errors),
        ("/v1/responses/{response_id}", detail, "GET", ResponseDetailDoc, {}),
        ("/v1/responses/{response_id}", detail, "DELETE", ResponseDetailDoc, {}),
        ("/v1/embeddings", r"^v1/embeddings$", "POST", EmbeddingsDoc, errors),
    ]


def anthropic_errors(operation: dict[str, Any]) -> None:
    """The messages door's error responses, in Anthropic's envelope (set before the generic OpenAI ones)."""
    responses = operation.setdefault("responses", {})
    for status, description in ANTHROPIC_STATUSES.items():
        responses[status] = {
            "description": description,
            "content": {"application/json": {"schema": ANTHROPIC_REF}},
        }
