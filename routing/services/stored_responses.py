"""Stored /v1/responses answers: they are request-log rows kept with `stored`, read only by their owner."""

from __future__ import annotations

from typing import Any

from config.db import run_orm
from providers.adapters.base import Usage
from providers.pricing import Cost
from routing.models import GatewayRequest
from routing.pipeline.types import Completion


def stored_response_get(*, user_id: int, request_id: str) -> GatewayRequest | None:
    """Another user's id, a forgotten one and a failed call all look the same: not there."""
    return (
        GatewayRequest.objects.filter(id=request_id, user_id=user_id, stored=True, door="responses")
        .prefetch_related("attempts")
        .first()
    )


def stored_response_forget(*, user_id: int, request_id: str) -> bool:
    """Forgets the answer for GET and previous_response_id; the row and its cost stay in the log."""
    return bool(
        GatewayRequest.objects.filter(id=request_id, user_id=user_id, stored=True, door="responses").update(
            stored=False
        )
    )


async def astored_response_get(*, user_id: int, request_id: str) -> GatewayRequest | None:
    return await run_orm(stored_response_get, user_id=user_id, request_id=request_id)


async def astored_response_forget(*, user_id: int, request_id: str) -> bool:
    return await run_orm(stored_response_forget, user_id=user_id, request_id=request_id)


def completion_of_row(row: GatewayRequest) -> Completion:
    """The canonical result a stored row stands for, for the door to render again."""
    return Completion(
        request_id=row.id,
        model=row.model,
        provider=row.provider,
        content=row.response_text or None,
        tool_calls=row.tool_calls or None,
        finish_reason=row.finish_reason or "stop",
        usage=Usage(
            prompt_tokens=row.input_tokens,
            completion_tokens=row.output_tokens,
            cached_tokens=row.cached_tokens,
            reasoning_tokens=row.reasoning_tokens,
        ),
        cost=Cost(row.input_cost_usd, row.output_cost_usd, row.total_cost_usd),
        estimated_cost=row.estimated_cost_usd,
        cached=row.cached,
        created_at=row.created_at,
        latency_ms=row.latency_ms,
        selection_mode=row.selection_mode,
        models_considered=row.models_considered,
        attempts=[_attempt(a) for a in row.attempts.all()],
        door_params=(row.params or {}).get("door", {}),
    )


def previous_turns(row: GatewayRequest) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The stored conversation without that request's own instructions, and its answer as an assistant turn."""
    messages = list(row.messages)
    if (
        (row.params or {}).get("door", {}).get("instructions")
        and messages
        and messages[0].get("role") == "system"
    ):
        messages = messages[1:]  # instructions are not carried over (Responses API rule)
    output: dict[str, Any] = {"role": "assistant", "content": row.response_text or None}
    if row.tool_calls:
        output["tool_calls"] = row.tool_calls
    return messages, output


def _attempt(attempt: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "model": attempt.model,
        "provider": attempt.provider,
        "status": attempt.status,
        "latency_ms": attempt.latency_ms,
        "status_code": attempt.status_code,
    }
    if attempt.error:
        data["message"] = attempt.error
    return data
