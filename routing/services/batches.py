"""Batches: 1..100 gateway requests in one call, validated (400 before anything is stored or counted), stored
as one item per request, and read back: progress at any time, the results in input order once done.
routing.services.batch_lanes runs the items, at most ROUTER_BATCH_CONCURRENCY in flight per provider.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from config.api_errors import InvalidRequest, NotFound
from config.db import run_orm
from providers.catalog import catalog_get, wrong_kind_message
from routing import engine
from routing.models import BatchItem, BatchJob, FanoutRow
from routing.pipeline.types import CompletionInput
from routing.services import dispatch
from routing.services.batch_lanes import batch_item_input, lane_fill
from routing.services.fanout import iso, parent_wait, row_json

MAX_ITEMS = 100
AUTO_LANE = "auto"
Status = FanoutRow.Status
ZERO = Decimal(0)


def _lane_for(model: str | None, mode: str) -> str:
    if mode != engine.MODE_MANUAL or not model or model == engine.AUTO_MODEL:
        return AUTO_LANE
    found = catalog_get().by_name(model)
    return found.provider if found is not None else AUTO_LANE


def _check_model(model: str | None, param: str) -> None:
    if model is None or model == engine.AUTO_MODEL:
        return
    found = catalog_get().by_name(model)
    if found is None or not (found.active and found.provider_active):
        raise InvalidRequest(f"Model '{model}' not found or inactive", param=param, code="model_not_found")
    if found.is_embedding:
        raise InvalidRequest(
            wrong_kind_message(model, found.kind, "chat"), param=param, code="model_not_found"
        )


def _items(
    requests: list[dict[str, Any]],
    *,
    model: str | None,
    mode: str,
    temperature: float | None,
    max_tokens: int | None,
) -> list[tuple[str, dict[str, Any]]]:
    """(client id, payload) per request, with the batch's defaults under each item's overrides."""
    if not 1 <= len(requests) <= MAX_ITEMS:
        raise InvalidRequest(
            f"requests must hold 1 to {MAX_ITEMS} items, got {len(requests)}",
            param="requests",
            code="invalid_value",
        )
    _check_model(model, "model")
    seen: set[str] = set()
    items = []
    for index, request in enumerate(requests):
        client_id = str(request["id"]) if request.get("id") is not None else str(index)
        if client_id in seen:
            raise InvalidRequest(
                f"Request id '{client_id}' is used more than once",
                param=f"requests[{index}].id",
                code="duplicate_id",
            )
        seen.add(client_id)
        if not request.get("messages"):
            raise InvalidRequest(
                "messages must not be empty", param=f"requests[{index}].messages", code="invalid_value"
            )
        item_model = request.get("model") or model
        _check_model(request.get("model"), f"requests[{index}].model")
        if mode == engine.MODE_MANUAL and not item_model:
            raise InvalidRequest(
                "model is required in manual mode (for the batch or this item)",
                param=f"requests[{index}].model",
                code="invalid_value",
            )
        payload = {
            "messages": request["messages"],
            "model": item_model,
            "mode": mode,
            "temperature": request["temperature"] if request.get("temperature") is not None else temperature,
            "max_tokens": request["max_tokens"] if request.get("max_tokens") is not None else max_tokens,
        }
        items.append((client_id, payload))
    return items


def batch_new_id() -> str:
    return "batch_" + secrets.token_hex(12)


def batch_inputs(
    *,
    requests: list[dict[str, Any]],
    model: str | None = None,
    mode: str = engine.MODE_MANUAL,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> list[CompletionInput]:
    """The request each item will run, validated as batch_create validates them (400), before the batch
    exists: to count them against rate limits."""
    items = _items(requests, model=model, mode=mode, temperature=temperature, max_tokens=max_tokens)
    return [batch_item_input(payload) for _, payload in items]


def batch_create(
    *,
    user_id: int,
    requests: list[dict[str, Any]],
    model: str | None = None,
    mode: str = engine.MODE_MANUAL,
    temperature: float | None = None,
    max_tokens: int | None = None,
    api_key_id: int | None = None,
    cache_group: str = "",
    batch_id: str | None = None,
) -> BatchJob:
    """Stores the batch and one item per request (400 for a bad model, id or count), then starts its lanes.

    `batch_id`: the id its items' requests were already counted under (against rate limits)."""
    items = _items(requests, model=model, mode=mode, temperature=temperature, max_tokens=max_tokens)
    with transaction.atomic():
        batch = BatchJob.objects.create(
            id=batch_id or batch_new_id(),
            user_id=user_id,
            status="queued",
            total_requests=len(items),
            params={"model": model, "mode": mode, "temperature": temperature, "max_tokens": max_tokens},
            api_key_id=api_key_id,
            cache_group=cache_group,
        )
        BatchItem.objects.bulk_create(
            BatchItem(
                batch=batch,
                index=index,
                client_id=client_id,
                payload=payload,
                lane=_lane_for(payload["model"], mode),
                status=Status.PENDING,
            )
            for index, (client_id, payload) in enumerate(items)
        )
        lanes = sorted({_lane_for(payload["model"], mode) for _, payload in items})
        transaction.on_commit(lambda: _lanes_fill(lanes))
    return batch


def _lanes_fill(lanes: Iterable[str]) -> None:
    for lane in lanes:
        lane_fill(lane=lane)


# --------------------------------------------------------------------------------------------- reading


def batch_summary(batch: BatchJob) -> dict[str, Any]:
    """The short form: what POST answers with 202."""
    return {
        "batch_id": batch.id,
        "object": "chat.batch",
        "status": batch.status,
        "total_requests": batch.total_requests,
    }


def batch_get(*, user_id: int, batch_id: str) -> dict[str, Any]:
    """Progress at any time; once completed, `results` in input order. 404 for an unknown or foreign id.

    `total_latency_ms` is the batch's wall-clock time, from creation to its last item.
    """
    batch = BatchJob.objects.filter(pk=batch_id, user_id=user_id).first()
    if batch is None:
        raise NotFound(f"Batch '{batch_id}' not found")
    items = list(batch.items.select_related("request").order_by("index"))
    successful = sum(1 for item in items if item.status == Status.SUCCESS)
    failed = sum(1 for item in items if item.status == Status.ERROR)
    body: dict[str, Any] = {
        **batch_summary(batch),
        "successful": successful,
        "failed": failed,
        "pending": len(items) - successful - failed,
        "total_cost_usd": sum((i.request.total_cost_usd for i in items if i.request is not None), ZERO),
        "created_at": iso(batch.created_at),
        "completed_at": iso(batch.completed_at),
    }
    if batch.status == "completed":
        assert batch.completed_at is not None
        body["total_latency_ms"] = int((batch.completed_at - batch.created_at).total_seconds() * 1000)
        body["results"] = [
            {
                "id": item.client_id,
                "index": item.index,
                "model": item.request.model if item.request is not None else item.payload.get("model"),
                **row_json(item, item.request),
            }
            for item in items
        ]
    return body


async def batch_wait(*, batch_id: str, timeout_s: float | None = None) -> bool:
    """Waits without blocking the event loop until every item finished (True) or the timeout passed."""

    async def done() -> bool:
        return bool(await run_orm(lambda: BatchJob.objects.filter(pk=batch_id, status="completed").exists()))

    if dispatch.broker_circuit.is_open:
        return False  # its items wait for the broker: answer 202 at once rather than wait for nothing
    timeout = settings.ROUTER_BATCH_WAIT_S if timeout_s is None else timeout_s
    return await parent_wait(parent_id=batch_id, is_done=done, timeout_s=timeout)
