"""GET /v1/models in OpenAI's list shape."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from providers.catalog import model_list


class ModelListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField(source="model_id")
        object = serializers.SerializerMethodField()
        created = serializers.SerializerMethodField()
        owned_by = serializers.CharField(source="provider.name")

        def get_object(self, obj: Any) -> str:
            return "model"

        def get_created(self, obj: Any) -> int:
            return int(obj.created_at.timestamp())

    @extend_schema(
        responses=inline_serializer(
            "ModelList", {"object": serializers.CharField(), "data": OutputSerializer(many=True)}
        )
    )
    def get(self, request: Request) -> Response:
        data = self.OutputSerializer(model_list(active_only=True), many=True).data
        return Response({"object": "list", "data": data})
