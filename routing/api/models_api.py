"""GET /v1/models and /v1/models/{id}: OpenAI's shapes, or Anthropic's when the client sends anthropic-version."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_errors import NotFound
from providers.catalog import model_list
from providers.models import Model
from routing.doors.messages_stream import models_list as anthropic_models_page


def _anthropic_info(model: Model) -> dict[str, Any]:
    return {
        "id": model.model_id,
        "display_name": model.display_name,
        "created_at": model.created_at,
        "context_window": model.context_window,
        "max_output_tokens": model.max_output_tokens,
    }


class _ModelSerializer(serializers.Serializer):
    id = serializers.CharField(source="model_id")
    object = serializers.SerializerMethodField()
    created = serializers.SerializerMethodField()
    owned_by = serializers.CharField(source="provider.name")
    kind = serializers.CharField(help_text='"chat" or "embedding" (the latter serves /v1/embeddings)')

    def get_object(self, obj: Any) -> str:
        return "model"

    def get_created(self, obj: Any) -> int:
        return int(obj.created_at.timestamp())


def _wants_anthropic(request: Request) -> bool:
    return bool(request.headers.get("anthropic-version"))


class ModelListApi(APIView):
    OutputSerializer = _ModelSerializer

    @extend_schema(
        operation_id="v1_models_list",
        responses=inline_serializer(
            "ModelList", {"object": serializers.CharField(), "data": _ModelSerializer(many=True)}
        ),
    )
    def get(self, request: Request) -> Response:
        models = model_list(active_only=True)
        if _wants_anthropic(request):
            return Response(anthropic_models_page([_anthropic_info(m) for m in models]))
        return Response({"object": "list", "data": _ModelSerializer(models, many=True).data})


class ModelDetailApi(APIView):
    @extend_schema(operation_id="v1_models_retrieve", responses=_ModelSerializer)
    def get(self, request: Request, model_id: str) -> Response:
        found = next((m for m in model_list(active_only=True) if model_id in (m.model_id, *m.aliases)), None)
        if found is None:
            raise NotFound(f"Model '{model_id}' not found or inactive", param="model", code="model_not_found")
        if _wants_anthropic(request):
            info = anthropic_models_page([_anthropic_info(found)])["data"][0]
            return Response(info)
        return Response(_ModelSerializer(found).data)
