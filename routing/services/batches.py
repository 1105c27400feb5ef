"""Batches: 1..100 gateway requests run by Celery, at most ROUTER_BATCH_CONCURRENCY in flight per provider.

The concurrency bound is a sliding window kept in PostgreSQL: an item is `queued` only when its provider
("lane") has a free slot, and each finished item queues the next pending one of its lane. Why this, rather
than a semaphore a task waits on or a Celery queue per provider:
- no worker process ever sits blocked on a busy provider while items for another provider wait behind it;
- the broker never holds more than the bound per lane, so a 100-item batch does not push comparisons (or
  other users' batches) behind a long queue, and a dead worker strands at most a lane's worth of messages;
- the bound holds across every batch, worker and web process (the lane's count and the queuing of the next
  items happen under one advisory lock), and needs no worker topology to match it;
- it lives in the same rows that make redelivery safe, so recovery (`batches_resume`) is one query.
Items in an optimized mode, whose provider is only known once planned, share the lane "auto".
"""

from __future__ import annotations

import logging
import secrets
import threading
import zlib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.api_errors import InvalidRequest, NotFound
from config.db import run_orm
from providers.catalog import catalog_get, wrong_kind_message
from routing import engine
from routing.models import OPEN_STATUSES, BatchItem, BatchJob, FanoutRow
from routing.pipeline.types import Caller, CompletionInput
from routing.services import dispatch
from routing.services.fanout import (
    Work,
    fanout_request_id,
    iso,
    parent_done_notify,
    parent_wait,
    row_json,
    row_run,
    rows_requeue_stale,
)

logger = logging.getLogger(__name__)

MAX_ITEMS = 100
AUTO_LANE = "auto"
LOCK_NAMESPACE = 0x62617463  # "batc": advisory locks of batch lanes
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


def batch_request_id(batch_id: str, index: int) -> str:
    """The log row id the request of its index-th item runs under."""
    return fanout_request_id(batch_id, str(index))


def _input(payload: dict[str, Any]) -> CompletionInput:
    return CompletionInput(
        messages=payload["messages"],
        model=payload.get("model"),
        mode=payload.get("mode") or engine.MODE_MANUAL,
        temperature=payload.get("temperature"),
        max_tokens=payload.get("max_tokens"),
    )


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
    return [_input(payload) for _, payload in items]


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


# --------------------------------------------------------------------------------------------- lanes


def _lane_lock(lane: str) -> None:
    """Serializes the count-then-queue of one lane across processes (held to the end of the transaction)."""
    if connection.vendor != "postgresql":
        return  # SQLite (embedded mode) serializes writers anyway
    key = zlib.crc32(lane.encode())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)",
            [LOCK_NAMESPACE, key - (1 << 32) if key >= 1 << 31 else key],
        )


def lane_fill(*, lane: str) -> list[int]:
    """Queues the lane's oldest pending items into its free slots; their tasks are sent after commit."""
    now = timezone.now()
    with transaction.atomic():
        _lane_lock(lane)
        in_flight = BatchItem.objects.filter(lane=lane, status__in=(Status.QUEUED, Status.RUNNING)).count()
        free = settings.ROUTER_BATCH_CONCURRENCY - in_flight
        if free <= 0:
            return []
        ids = list(
            BatchItem.objects.filter(lane=lane, status=Status.PENDING)
            .order_by("pk")
            .values_list("pk", flat=True)[:free]
        )
        if ids:
            BatchItem.objects.filter(pk__in=ids, status=Status.PENDING).update(
                status=Status.QUEUED, queued_at=now
            )
            transaction.on_commit(lambda: _publish(ids))
    return ids


def _lanes_fill(lanes: Iterable[str]) -> None:
    for lane in lanes:
        lane_fill(lane=lane)


_eager = threading.local()


def _unpublished(ids: list[int]) -> None:
    """Items whose task could not be sent wait as pending: the batch stays accepted, and the periodic resume
    (or the next finished item of their lane) queues them once the broker is back."""
    BatchItem.objects.filter(pk__in=ids, status=Status.QUEUED).update(status=Status.PENDING, queued_at=None)
    logger.warning("broker unavailable: %d batch items wait for the periodic resume", len(ids))


def _publish(ids: list[int]) -> None:
    """Sends one task per item. Without a broker (embedded mode, eager Celery) the items run here, one after
    another: a loop rather than recursion, since each finished item queues the next."""
    if not dispatch.runs_inline():
        for index, pk in enumerate(ids):
            try:
                dispatch.task_send(dispatch.BATCH_ITEM_RUN, pk)
            except dispatch.BrokerUnavailable:
                _unpublished(ids[index:])
                return
        return
    pending: list[int] | None = getattr(_eager, "pending", None)
    if pending is not None:
        pending.extend(ids)
        return
    _eager.pending = pending = list(ids)
    try:
        while pending:
            batch_item_run(item_id=pending.pop(0))
    finally:
        _eager.pending = None


# --------------------------------------------------------------------------------------------- running


def _work_for(item: BatchItem) -> Work:
    batch = item.batch
    inp = _input(item.payload)
    inp.client_request_id = item.client_id
    inp.batch_id = batch.id
    inp.idempotency_key = f"batch_item:{item.pk}"
    inp.rate_counted = True  # with the batch, by the view that admitted it
    return Work(
        caller=Caller(
            user_id=batch.user_id,
            api_key_id=batch.api_key_id,
            cache_group=batch.cache_group,
            team_id=batch.api_key.team_id if batch.api_key is not None else None,
        ),
        inp=inp,
        request_id=batch_request_id(batch.id, item.index),
    )


def _mark_running(item: BatchItem) -> None:
    BatchJob.objects.filter(pk=item.batch_id, status="queued").update(status="running")


def _complete_if_done(batch_id: str) -> None:
    if BatchItem.objects.filter(batch_id=batch_id, status__in=OPEN_STATUSES).exists():
        return
    completed = BatchJob.objects.filter(pk=batch_id, status__in=("queued", "running")).update(
        status="completed", completed_at=timezone.now()
    )
    if completed:
        parent_done_notify(batch_id)


def batch_item_run(*, item_id: int) -> None:
    """Runs one item's request once (a redelivered task never runs or charges it twice), then frees its slot."""
    item = BatchItem.objects.select_related("batch__api_key").filter(pk=item_id).first()
    if item is None:
        return
    finished = row_run(
        model=BatchItem, pk=item_id, work_for=lambda _row: _work_for(item), claimed=_mark_running
    )
    if finished:
        _complete_if_done(item.batch_id)
        lane_fill(lane=item.lane)


def batches_resume() -> dict[str, int]:
    """The periodic safety net (Celery beat): items whose worker died or whose message was lost are sent
    again, lanes with free slots are filled, and batches whose items all finished are completed."""
    now = timezone.now()
    ids = rows_requeue_stale(BatchItem, now=now, batch__status__in=("queued", "running"))
    if ids:
        transaction.on_commit(lambda: _publish(ids))
    lanes = sorted(
        set(BatchItem.objects.filter(status=Status.PENDING).values_list("lane", flat=True).distinct())
    )
    filled = sum(len(lane_fill(lane=lane)) for lane in lanes)
    completed = 0
    for batch_id in (
        BatchJob.objects.filter(status__in=("queued", "running"))
        .exclude(items__status__in=OPEN_STATUSES)
        .values_list("pk", flat=True)
    ):
        _complete_if_done(batch_id)
        completed += 1
    return {"requeued": len(ids), "queued": filled, "completed": completed}


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
