"""The /v1/analytics API: usage summary, the request log and one request, the catalog with prices."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.filters import DOOR_CHOICES, KEY_PREFIX_MAX_LENGTH, RequestFilter, shared_filters
from analytics.request_pages import request_page
from analytics.selectors import (
    model_list_with_prices,
    prompt_preview,
    request_get,
    request_list,
    usage_summary,
)
from analytics.visibility import rows_visible_to
from config.api_errors import NotFound
from config.rendering import MoneyJSONRenderer


def money(**kwargs: Any) -> serializers.DecimalField:
    """Decimal in, a plain JSON number out (see MoneyJSONRenderer)."""
    return serializers.DecimalField(max_digits=30, decimal_places=10, coerce_to_string=False, **kwargs)


class AnalyticsApi(APIView):
    """Every analytics endpoint answers for the caller's own data only, whoever the caller is: their personal
    requests and those of the team keys of the teams they are a member of (analytics.visibility)."""

    renderer_classes = [MoneyJSONRenderer]

    def rows(self, request: Request) -> Q:
        return rows_visible_to(user_id=request.auth.user_id)  # type: ignore[union-attr]


SHARED_FILTER_PARAMETERS = [
    OpenApiParameter("door", OpenApiTypes.STR, enum=[door for door, _ in DOOR_CHOICES]),
    OpenApiParameter("team", OpenApiTypes.INT, description="A team's id: the requests made with its keys"),
    OpenApiParameter("api_key", OpenApiTypes.INT, description="An API key's id"),
    OpenApiParameter("key", OpenApiTypes.STR, description="An API key's display prefix (amr_…)"),
]


class UsageSummaryApi(AnalyticsApi):
    @extend_schema_serializer(component_name="AnalyticsUsageQuery")
    class InputSerializer(serializers.Serializer):
        days = serializers.IntegerField(min_value=1, max_value=365, default=30)
        door = serializers.ChoiceField(choices=DOOR_CHOICES, required=False)
        team = serializers.IntegerField(min_value=1, required=False)
        api_key = serializers.IntegerField(min_value=1, required=False)
        key = serializers.CharField(max_length=KEY_PREFIX_MAX_LENGTH, required=False)

    @extend_schema_serializer(component_name="AnalyticsUsageGroup")
    class GroupSerializer(serializers.Serializer):
        requests = serializers.IntegerField()
        cost_usd = money()

    @extend_schema_serializer(component_name="AnalyticsUsageProvider")
    class ProviderSerializer(GroupSerializer):
        provider = serializers.CharField(source="name")

    @extend_schema_serializer(component_name="AnalyticsUsageModel")
    class ModelSerializer(GroupSerializer):
        model = serializers.CharField(source="name")

    @extend_schema_serializer(component_name="AnalyticsUsageDoor")
    class DoorSerializer(GroupSerializer):
        door = serializers.CharField(source="name")

    @extend_schema_serializer(component_name="AnalyticsUsageKey")
    class KeySerializer(GroupSerializer):
        key_id = serializers.IntegerField(source="id", allow_null=True)
        key = serializers.CharField(source="prefix", allow_null=True)
        name = serializers.CharField(allow_null=True)
        team_id = serializers.IntegerField(allow_null=True)

        def to_representation(self, instance: Any) -> dict[str, Any]:
            data = super().to_representation(instance)
            if instance.id is None:  # the requests made without a key (the dashboard's compare)
                data["key"] = data["name"] = None
            return data

    @extend_schema_serializer(component_name="AnalyticsUsageTeam")
    class TeamSerializer(GroupSerializer):
        team_id = serializers.IntegerField(source="id", allow_null=True)
        team = serializers.SerializerMethodField()

        def get_team(self, obj: Any) -> str | None:
            return obj.name if obj.id is not None else None  # None: personal keys and no key

    @extend_schema_serializer(component_name="AnalyticsUsageDay")
    class DaySerializer(serializers.Serializer):
        date = serializers.DateField()
        requests = serializers.IntegerField()
        cost_usd = money()

    @extend_schema_serializer(component_name="AnalyticsUsageTotals")
    class OutputSerializer(serializers.Serializer):
        days = serializers.IntegerField()
        start_date = serializers.DateField(source="start")
        end_date = serializers.DateField(source="end")
        total_requests = serializers.IntegerField()
        total_cost_usd = money()
        avg_latency_ms = serializers.DecimalField(max_digits=20, decimal_places=1, coerce_to_string=False)
        p95_latency_ms = serializers.IntegerField(allow_null=True)
        success_rate = serializers.DecimalField(max_digits=4, decimal_places=3, coerce_to_string=False)
        cache_hits = serializers.IntegerField(source="totals.cache_hits")
        cache_savings_usd = money(source="totals.cache_savings_usd")
        input_tokens = serializers.IntegerField(source="totals.input_tokens")
        output_tokens = serializers.IntegerField(source="totals.output_tokens")

    @extend_schema(
        parameters=[InputSerializer],
        operation_id="analytics_usage_retrieve",
        responses=inline_serializer(
            "AnalyticsUsageSummary",
            {
                **OutputSerializer().fields,
                "by_provider": ProviderSerializer(many=True),
                "by_model": ModelSerializer(many=True),
                "by_door": DoorSerializer(many=True),
                "by_team": TeamSerializer(many=True),
                "by_key": KeySerializer(many=True),
                "daily_stats": DaySerializer(many=True),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        summary = usage_summary(
            days=params.validated_data["days"],
            where=self.rows(request) & shared_filters(params.validated_data),
        )
        data: dict[str, Any] = dict(self.OutputSerializer(summary).data)
        data["by_provider"] = self.ProviderSerializer(summary.by_provider, many=True).data
        data["by_model"] = self.ModelSerializer(summary.by_model, many=True).data
        data["by_door"] = self.DoorSerializer(summary.by_door, many=True).data
        data["by_team"] = self.TeamSerializer(summary.by_team, many=True).data
        data["by_key"] = self.KeySerializer(summary.by_key, many=True).data
        data["daily_stats"] = self.DaySerializer(summary.daily, many=True).data
        return Response(data)


class RequestListApi(AnalyticsApi):
    @extend_schema_serializer(component_name="AnalyticsRequestListQuery")
    class InputSerializer(serializers.Serializer):
        page = serializers.IntegerField(min_value=1, max_value=10_000_000, default=1)
        per_page = serializers.IntegerField(min_value=1, max_value=100, default=20)

    @extend_schema_serializer(component_name="AnalyticsRequestRow")
    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField()
        created_at = serializers.DateTimeField()
        model = serializers.CharField()
        provider = serializers.CharField()
        door = serializers.CharField()
        prompt_preview = serializers.SerializerMethodField()
        input_tokens = serializers.IntegerField()
        output_tokens = serializers.IntegerField()
        total_cost_usd = money()
        latency_ms = serializers.IntegerField()
        status = serializers.CharField()
        cached = serializers.BooleanField()

        def get_prompt_preview(self, obj: Any) -> str:
            return prompt_preview(obj.prompt_head)

    @extend_schema(
        parameters=[
            InputSerializer,
            *(
                OpenApiParameter(name, OpenApiTypes.STR)
                for name in ("model", "provider", "status", "search", "start_date", "end_date")
            ),
            *SHARED_FILTER_PARAMETERS,
        ],
        operation_id="analytics_requests_list",
        responses=inline_serializer(
            "AnalyticsRequestList",
            {
                "requests": OutputSerializer(many=True),
                "total": serializers.IntegerField(
                    help_text="The matching requests; a lower bound when total_is_lower_bound is true."
                ),
                "total_is_lower_bound": serializers.BooleanField(
                    help_text=(
                        "True when counting stopped at the cap (ROUTER_SEARCH_COUNT_CAP, 10,000 by default: a"
                        " search, or filters the daily rollups don't hold, over many rows): at least `total`"
                        " requests match. Every page can still be asked for; while this is true and the page has"
                        " rows, another page follows. False: `total` is exact."
                    )
                ),
                "page": serializers.IntegerField(),
                "per_page": serializers.IntegerField(),
                "total_pages": serializers.IntegerField(
                    help_text="Pages of `total`: exact, or with a lower-bound total the pages known to exist."
                ),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        rows = self.rows(request)
        filters = RequestFilter(request.query_params, queryset=request_list(rows=rows))
        if not filters.is_valid():
            raise serializers.ValidationError(filters.errors)
        page = request_page(
            filters=filters,
            rows=rows,
            page=params.validated_data["page"],
            per_page=params.validated_data["per_page"],
        )
        return Response(
            {
                "requests": self.OutputSerializer(page.rows, many=True).data,
                "total": page.total,
                "total_is_lower_bound": page.total_is_lower_bound,
                "page": page.page,
                "per_page": page.per_page,
                "total_pages": page.total_pages,
            }
        )


@extend_schema_serializer(component_name="AnalyticsAttempt")
class AttemptSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    model = serializers.CharField()
    provider = serializers.CharField()
    status = serializers.CharField()
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField()
    error = serializers.CharField()


class RequestDetailApi(AnalyticsApi):
    @extend_schema_serializer(component_name="AnalyticsRequestDetail")
    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField()
        created_at = serializers.DateTimeField()
        completed_at = serializers.DateTimeField(allow_null=True)
        model = serializers.CharField()
        requested_model = serializers.CharField()
        provider = serializers.CharField()
        door = serializers.CharField()
        prompt_text = serializers.CharField()
        response_text = serializers.CharField()
        tool_calls = serializers.JSONField(allow_null=True)  # the answer's tool calls, OpenAI's shape
        messages = serializers.JSONField()
        finish_reason = serializers.CharField()
        input_tokens = serializers.IntegerField()
        output_tokens = serializers.IntegerField()
        total_tokens = serializers.IntegerField()
        cached_tokens = serializers.IntegerField()
        reasoning_tokens = serializers.IntegerField()
        input_cost_usd = money()
        output_cost_usd = money()
        total_cost_usd = money()
        estimated_cost_usd = money()
        cache_savings_usd = money()
        latency_ms = serializers.IntegerField()
        status = serializers.CharField()
        http_status = serializers.IntegerField()
        error_code = serializers.CharField()
        error_message = serializers.CharField()
        cached = serializers.BooleanField()
        budget_fitted = serializers.BooleanField()
        selection_mode = serializers.CharField()
        models_considered = serializers.IntegerField()
        candidates = serializers.JSONField()
        attempts = AttemptSerializer(many=True, source="attempts.all")
        comparison_id = serializers.CharField(allow_null=True)
        batch_id = serializers.CharField(allow_null=True)

    @extend_schema(operation_id="analytics_request_retrieve", responses=OutputSerializer)
    def get(self, request: Request, request_id: str) -> Response:
        row = None if "\x00" in request_id else request_get(request_id=request_id, rows=self.rows(request))
        if row is None:
            raise NotFound(f"Request '{request_id}' not found", param="id", code="request_not_found")
        return Response(self.OutputSerializer(row).data)


class ModelListApi(AnalyticsApi):
    @extend_schema_serializer(component_name="AnalyticsCatalogModel")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        model_id = serializers.CharField()
        display_name = serializers.CharField()
        provider = serializers.CharField(source="provider.name")
        kind = serializers.CharField()
        input_price_per_1m_tokens = money(allow_null=True)
        output_price_per_1m_tokens = money(allow_null=True)
        cached_input_price_per_1m_tokens = money(allow_null=True)
        context_window = serializers.IntegerField()
        max_output_tokens = serializers.IntegerField()
        supports_tools = serializers.BooleanField()
        supports_vision = serializers.BooleanField()
        supports_json = serializers.BooleanField()
        is_active = serializers.BooleanField(source="active")
        aliases = serializers.ListField(child=serializers.CharField())

    @extend_schema(operation_id="analytics_models_list", responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        models = model_list_with_prices()
        return Response(self.OutputSerializer(models, many=True).data)
