"""The /v1/budget API: read the caller's budget and every window that applies to the calling key, set or remove
their own limit and own windows, reset what their own limits count."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets.limits import BudgetState, budget_limit_set, budget_reset, budget_state, budget_window_set
from budgets.periods import PERIODS
from budgets.selectors import budget_windows
from config.api_errors import InvalidRequest
from config.rendering import MoneyJSONRenderer

MONEY: dict[str, Any] = {"max_digits": 20, "decimal_places": 10, "coerce_to_string": False}


class LimitField(serializers.DecimalField):
    """A DecimalField that reads only null as null: DRF's maps "" to None too, which would lift the limit."""

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if isinstance(data, str) and not data.strip():
            self.fail("invalid")
        return super().validate_empty_values(data)


@extend_schema_serializer(component_name="BudgetWindow")
class WindowOutputSerializer(serializers.Serializer):
    scope = serializers.CharField()
    scope_id = serializers.IntegerField()
    name = serializers.CharField()
    period = serializers.CharField()
    limit_usd = serializers.DecimalField(source="limit", allow_null=True, **MONEY)
    spent_usd = serializers.DecimalField(source="spent", **MONEY)
    reserved_usd = serializers.DecimalField(source="reserved", **MONEY)
    remaining_usd = serializers.DecimalField(source="remaining", allow_null=True, **MONEY)
    used_percentage = serializers.DecimalField(
        max_digits=12, decimal_places=2, coerce_to_string=False, allow_null=True
    )
    period_start = serializers.DateTimeField()
    resets_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(component_name="Budget")
class BudgetOutputSerializer(serializers.Serializer):
    """The shape of api.md's GET /v1/budget, shared by the three endpoints (each answers with the budget)."""

    @extend_schema_serializer(component_name="BudgetSpending")
    class SpendingSerializer(serializers.Serializer):
        total_spent_usd = serializers.DecimalField(source="spent", **MONEY)
        spending_limit_usd = serializers.DecimalField(source="limit", allow_null=True, **MONEY)
        remaining_budget_usd = serializers.DecimalField(source="remaining", allow_null=True, **MONEY)
        budget_used_percentage = serializers.DecimalField(
            source="used_percentage", max_digits=12, decimal_places=2, coerce_to_string=False, allow_null=True
        )

    user_id = serializers.IntegerField(source="state.user_id")
    spending = SpendingSerializer(source="state")
    period = serializers.CharField(source="state.period")
    period_start = serializers.DateTimeField(source="state.period_start")
    resets_at = serializers.DateTimeField(source="state.resets_at", allow_null=True)
    admin_limit_usd = serializers.DecimalField(source="state.admin_limit", allow_null=True, **MONEY)
    windows = WindowOutputSerializer(many=True)


class BudgetApi(APIView):
    """Every budget endpoint acts on the caller's own budget: there is no user id to pass, or to guess."""

    renderer_classes = [MoneyJSONRenderer]

    @staticmethod
    def user_id(request: Request) -> int:
        return request.auth.user_id  # type: ignore[union-attr]

    @staticmethod
    def key_id(request: Request) -> int:
        return request.auth.key_id  # type: ignore[union-attr]

    def render(self, request: Request, state: BudgetState) -> Response:
        windows = budget_windows(user_id=state.user_id, api_key_id=self.key_id(request))
        return Response(BudgetOutputSerializer({"state": state, "windows": windows}).data)


class BudgetGetApi(BudgetApi):
    OutputSerializer = BudgetOutputSerializer

    @extend_schema(responses=BudgetOutputSerializer)
    def get(self, request: Request) -> Response:
        return self.render(request, budget_state(user_id=self.user_id(request)))


class BudgetLimitSetApi(BudgetApi):
    @extend_schema_serializer(component_name="BudgetLimitInput")
    class InputSerializer(serializers.Serializer):
        # Required and nullable: null removes the limit; a missing value is an error, never "unlimited".
        limit_usd = LimitField(max_digits=20, decimal_places=10, min_value=0, allow_null=True, required=True)

    OutputSerializer = BudgetOutputSerializer

    @staticmethod
    def raw_input(request: Request) -> dict[str, Any]:
        """The JSON body's limit_usd, else the query parameter (where the text "null" means null).

        The query value is copied into a plain dict on purpose: handed a QueryDict, DRF reads an empty
        `?limit_usd=` as null, and that would remove the limit by accident (LimitField covers the rest).
        """
        if not isinstance(request.data, dict):
            raise InvalidRequest("The request body must be a JSON object", code="invalid_json")
        if "limit_usd" in request.data:
            return {"limit_usd": request.data["limit_usd"]}
        if "limit_usd" in request.query_params:
            raw = request.query_params["limit_usd"].strip()
            return {"limit_usd": None if raw.lower() == "null" else raw}
        return {}

    @extend_schema(
        request=InputSerializer,
        parameters=[OpenApiParameter("limit_usd", str, required=False, description="Instead of the body")],
        responses=BudgetOutputSerializer,
    )
    def put(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=self.raw_input(request))
        serializer.is_valid(raise_exception=True)
        state = budget_limit_set(
            user_id=self.user_id(request), limit_usd=serializer.validated_data["limit_usd"]
        )
        return self.render(request, state)


class BudgetResetApi(BudgetApi):
    OutputSerializer = BudgetOutputSerializer

    @extend_schema(request=None, responses=BudgetOutputSerializer)
    def post(self, request: Request) -> Response:
        return self.render(
            request, budget_reset(user_id=self.user_id(request), api_key_id=self.key_id(request))
        )


class BudgetWindowSetApi(BudgetApi):
    """PUT /v1/budget/windows: the caller's own limit on a window of its user or of the calling key."""

    @extend_schema_serializer(component_name="BudgetWindowInput")
    class InputSerializer(serializers.Serializer):
        scope = serializers.ChoiceField(choices=["user", "key"])
        period = serializers.ChoiceField(choices=list(PERIODS))
        # Required and nullable: null removes the window's own limit; missing is an error, never "unlimited".
        limit_usd = LimitField(max_digits=20, decimal_places=10, min_value=0, allow_null=True, required=True)

    OutputSerializer = BudgetOutputSerializer

    @extend_schema(request=InputSerializer, responses=BudgetOutputSerializer)
    def put(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise InvalidRequest("The request body must be a JSON object", code="invalid_json")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        budget_window_set(
            user_id=self.user_id(request),
            api_key_id=self.key_id(request),
            scope=data["scope"],
            period=data["period"],
            limit_usd=data["limit_usd"],
        )
        return self.render(request, budget_state(user_id=self.user_id(request)))
