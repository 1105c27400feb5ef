"""Batch items run by Celery, at most ROUTER_BATCH_CONCURRENCY in flight per provider.

The concurrency bound is a sliding window kept in PostgreSQL: an item is `queued` only when its provider
("lane") has a free slot, and each finished item queues the next pending one of its lane. Why this, rather
than a semaphore a task waits on or a Celery queue per provider:
- no worker process ever sits blocked on a busy provider while items for another provider wait behind it;
- the broker never holds more than the bound per lane, so a 100-item batch does not push comparisons (or
  other users' batches) behind a long queue, and a dead worker strands at most a lane's worth of messages;
- the bound holds across every batch, worker and web process (the lane's count and the queuing of the next
  items happen under one advisory lock), and needs no worker topology to match it;
- it lives in the same rows that make redelivery safe, so recovery (`batches_resume`) is one query.
Items in an optimized mode, whose provider is only known once planned, share the lane "auto" (each item's
lane is set when routing.services.batches stores it).
"""

from __future__ import annotations

import logging
import threading
import zlib
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from routing import engine
from routing.models import OPEN_STATUSES, BatchItem, BatchJob, FanoutRow
from routing.pipeline.types import Caller, CompletionInput
from routing.services import dispatch
from routing.services.fanout import Work, fanout_request_id, parent_done_notify, row_run, rows_requeue_stale

logger = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x62617463  # "batc": advisory locks of batch lanes
Status = FanoutRow.Status


def batch_request_id(batch_id: str, index: int) -> str:
    """The log row id the request of its index-th item runs under."""
    return fanout_request_id(batch_id, str(index))


def batch_item_input(payload: dict[str, Any]) -> CompletionInput:
    """The request an item runs, from its stored payload (batches.batch_inputs counts the same ones)."""
    return CompletionInput(
        messages=payload["messages"],
        model=payload.get("model"),
        mode=payload.get("mode") or engine.MODE_MANUAL,
        temperature=payload.get("temperature"),
        max_tokens=payload.get("max_tokens"),
    )


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
    inp = batch_item_input(item.payload)
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
