"""Reads for the dashboard's compare playground: the model choices, the reading of routing's comparison
answer, and a comparison's prompt to offer again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from analytics.usage import ZERO
from providers.models import Model
from routing.models import Comparison


def compare_model_choices() -> list[tuple[str, str]]:
    models = Model.objects.select_related("provider").filter(
        active=True, provider__active=True, kind=Model.Kind.CHAT
    )
    return [
        (m.model_id, f"{m.model_id} ({m.provider.name})")
        for m in models.order_by("provider__name", "model_id")
    ]


@dataclass
class CompareResult:
    model: str
    provider: str = ""
    status: str = "pending"  # pending | success | error
    content: str = ""
    error: str = ""
    cost_usd: Decimal = ZERO
    latency_ms: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    request_id: str = ""
    cheapest: bool = False
    fastest: bool = False


@dataclass
class ComparisonView:
    pk: str
    status: str
    models: list[str]
    results: list[CompareResult]
    total_cost_usd: Decimal
    polling: bool


def comparison_view(data: Mapping[str, Any], *, now: datetime | None = None) -> ComparisonView:
    """The playground's reading of routing's comparison_get() answer (the /v1/chat/compare shape)."""
    summary = data.get("summary") or {}
    results = []
    for row in data.get("results") or []:
        usage = row.get("usage") or {}
        results.append(
            CompareResult(
                model=row.get("model", ""),
                provider=row.get("provider") or "",
                status=row.get("status") or "pending",
                content=row.get("content") or "",
                error=row.get("error_message") or "",
                cost_usd=Decimal(str(usage.get("total_cost_usd") or 0)),
                latency_ms=row.get("latency_ms"),
                input_tokens=usage.get("prompt_tokens") or 0,
                output_tokens=usage.get("completion_tokens") or 0,
                request_id=row.get("request_id") or "",
                cheapest=row.get("model") == summary.get("cheapest") and row.get("status") == "success",
                fastest=row.get("model") == summary.get("fastest") and row.get("status") == "success",
            )
        )
    created = parse_datetime(str(data.get("created_at") or "")) or timezone.now()
    deadline = created + timedelta(seconds=settings.ROUTER_COMPARE_TIMEOUT_S + 30)
    running = data.get("status") != "completed" and any(r.status == "pending" for r in results)
    return ComparisonView(
        pk=str(data.get("comparison_id", "")),
        status=str(data.get("status", "")),
        models=list(data.get("models") or [r.model for r in results]),
        results=results,
        total_cost_usd=Decimal(str(data.get("total_cost_usd") or 0)),
        polling=running and (now or timezone.now()) < deadline,
    )


def comparison_prompt(*, comparison_id: str) -> str:
    """The last user message of a comparison, to offer the same prompt again."""
    messages = Comparison.objects.filter(pk=comparison_id).values_list("messages", flat=True).first() or []
    for message in reversed(messages):
        if (
            isinstance(message, dict)
            and message.get("role") == "user"
            and isinstance(message.get("content"), str)
        ):
            return str(message["content"])
    return ""
