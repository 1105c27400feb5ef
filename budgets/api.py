"""The /v1/budget API: read the caller's budget, set or remove their own limit, reset the period."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets.services import BudgetState, budget_limit_set, budget_reset, budget_state
from config.api_errors import InvalidRequest
from config.rendering import MoneyJSONRenderer

MONEY: dict[str, Any] = {"max_digits": 20, "decimal_places": 10, "coerce_to_string": False}


class LimitField(serializers.DecimalField):
    """A DecimalField that reads only null as null: DRF's maps "" to None too, which would lift the limit."""

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if isinstance(data, str) and not data.strip():
            self.fail("invalid")
        return super().validate_empty_values(data)


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

    user_id = serializers.IntegerField()
    spending = SpendingSerializer(source="*")
    period = serializers.CharField()
    period_start = serializers.DateTimeField()
    resets_at = serializers.DateTimeField(allow_null=True)
    admin_limit_usd = serializers.DecimalField(source="admin_limit", allow_null=True, **MONEY)


class BudgetApi(APIView):
    """Every budget endpoint acts on the caller's own budget: there is no user id to pass, or to guess."""

    renderer_classes = [MoneyJSONRenderer]

    @staticmethod
    def user_id(request: Request) -> int:
        return request.auth.user_id  # type: ignore[union-attr]

    @staticmethod
    def render(state: BudgetState) -> Response:
        return Response(BudgetOutputSerializer(state).data)


class BudgetGetApi(BudgetApi):
    OutputSerializer = BudgetOutputSerializer

    @extend_schema(responses=BudgetOutputSerializer)
    def get(self, request: Request) -> Response:
        return self.render(budget_state(user_id=self.user_id(request)))


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
        return self.render(state)


class BudgetResetApi(BudgetApi):
    OutputSerializer = BudgetOutputSerializer

    @extend_schema(request=None, responses=BudgetOutputSerializer)
    def post(self, request: Request) -> Response:
        return self.render(budget_reset(user_id=self.user_id(request)))
