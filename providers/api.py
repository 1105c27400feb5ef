"""POST /v1/tokens/estimate: prompt tokens and cost of a request (chat messages, or embeddings input) on one
model, a list, or every active model of that kind."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_errors import InvalidRequest
from config.rendering import MoneyJSONRenderer
from providers.embedding_input import InputError, embedding_inputs_parse
from providers.estimates import DEFAULT_EXPECTED_OUTPUT_TOKENS, ModelNotFound, estimate_list
from providers.messages import MessageSerializer

# Decimal out, rendered as an exact JSON number by MoneyJSONRenderer.
MONEY: dict[str, Any] = {"max_digits": 30, "decimal_places": 10, "coerce_to_string": False}


class TokenEstimateApi(APIView):
    renderer_classes = [MoneyJSONRenderer]

    @extend_schema_serializer(component_name="TokenEstimateRequest")
    class InputSerializer(serializers.Serializer):
        messages = MessageSerializer(many=True, allow_empty=False, max_length=10_000, required=False)  # type: ignore[call-arg]
        input = serializers.JSONField(
            required=False,
            help_text="Instead of messages, for embedding models: a string, a list of strings or token arrays",
        )
        model = serializers.CharField(required=False, max_length=200)
        models = serializers.ListField(
            child=serializers.CharField(max_length=200), required=False, allow_empty=False, max_length=100
        )
        expected_output_tokens = serializers.IntegerField(
            min_value=1, max_value=2_000_000, default=DEFAULT_EXPECTED_OUTPUT_TOKENS
        )
        max_tokens = serializers.IntegerField(
            min_value=1, max_value=2_000_000, required=False, allow_null=True
        )
        tools = serializers.ListField(
            child=serializers.DictField(), required=False, allow_null=True, max_length=128
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if "model" in attrs and "models" in attrs:
                raise serializers.ValidationError({"models": "give either model or models, not both"})
            if ("messages" in attrs) == ("input" in attrs):
                raise serializers.ValidationError(
                    {"messages": "give messages (chat models) or input (embedding models), one of them"}
                )
            if "input" in attrs:
                try:
                    attrs["input"] = embedding_inputs_parse(attrs["input"])
                except InputError as exc:
                    raise serializers.ValidationError({exc.param: exc.message}) from None
            return attrs

    @extend_schema_serializer(component_name="TokenEstimateList")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="TokenEstimate")
        class EstimateSerializer(serializers.Serializer):
            model = serializers.CharField()
            provider = serializers.CharField()
            prompt_tokens = serializers.IntegerField()
            expected_output_tokens = serializers.IntegerField()
            input_cost_usd = serializers.DecimalField(**MONEY)
            output_cost_usd = serializers.DecimalField(**MONEY)
            total_cost_usd = serializers.DecimalField(**MONEY)
            fits_context = serializers.BooleanField()
            method = serializers.CharField(help_text='"tiktoken:<encoding>" (exact tokenizer) or "approx"')

        estimates = EstimateSerializer(many=True)

    @extend_schema(request=InputSerializer, responses=OutputSerializer, operation_id="tokens_estimate")
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            estimates = estimate_list(
                # The raw messages, as sent: validated_data drops keys the serializer does not name.
                messages=[dict(m) for m in serializer.initial_data["messages"]]
                if "messages" in data
                else None,
                inputs=data.get("input"),
                model=data.get("model"),
                models=data.get("models"),
                expected_output_tokens=data["expected_output_tokens"],
                max_tokens=data.get("max_tokens"),
                tools=data.get("tools"),
            )
        except ModelNotFound as exc:
            param = "model" if "model" in data else "models"
            raise InvalidRequest(str(exc), param=param, code="model_not_found") from exc
        return Response(self.OutputSerializer({"estimates": estimates}).data)
