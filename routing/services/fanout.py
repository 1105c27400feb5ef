"""Runs the gateway request behind a fan-out row (a compared model, a batch item) once, whatever Celery redelivers.

Exactly-once, as implemented here:
- Each row has a deterministic request id (`fanout_request_id`): the log row's primary key. Logging and budget
  settlement share one transaction (see routing.pipeline.record), so a second charged row for the same row is
  impossible: a duplicate run's insert fails on the primary key and its settlement rolls back with it.
- Each row has one budget reservation key (`<kind>:<pk>`). A redelivered run gets the hold its dead
  predecessor left open (or a fresh hold if that one expired) instead of holding twice.
- A run claims the row under a lease (`ROUTER_FANOUT_LEASE_S`, longer than the task's hard time limit) with a
  conditional update, so a redelivered message whose row is already running elsewhere does nothing, and one
  whose row finished does nothing. A row whose lease ran out (its worker died) may be claimed again.
- A worker that dies after calling the provider but before logging: the provider call is lost to us (the
  operator pays it, the user does not); the redelivered run calls again and that call is the one charged.
  A worker that dies after logging: the redelivered run finds the log row and only marks the row done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from config.api_errors import ApiError
from config.db import close_pools
from config.redis_clients import REDIS_ERRORS, aclose_redis, get_sync_redis, redis_async_client
from providers.http import aclose_clients
from routing.models import FanoutRow, GatewayRequest
from routing.pipeline.complete import completion_create
from routing.pipeline.types import Caller, CompletionInput
from routing.usage import usage_json_of_row

logger = logging.getLogger(__name__)
Row = TypeVar("Row", bound=FanoutRow)
T = TypeVar("T")
Status = FanoutRow.Status
DONE = (Status.SUCCESS, Status.ERROR)
CHANNEL_PREFIX = "router:fanout:done:"


@dataclass(frozen=True, slots=True)
class Work:
    """One gateway request, as a compared model or a batch item runs it."""

    caller: Caller
    inp: CompletionInput
    request_id: str


def fanout_request_id(parent_id: str, tag: str) -> str:
    """The log row id of a row: its parent's random part plus the row's place, so it never collides."""
    return f"req_{parent_id.split('_', 1)[1]}_{tag}"


def lease_until(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.ROUTER_FANOUT_LEASE_S)


# --------------------------------------------------------------------------------------------- claiming


SKIP = 0  # _claim: nothing to do for this delivery
GAVE_UP = -1  # _claim: too many deliveries; the row was marked as an error


def _claim(model: type[Row], pk: int) -> int:
    """Takes the row for this delivery: the attempt number (1, 2, …), SKIP when it is done or held by a
    live run, or GAVE_UP when it has been delivered too often."""
    now = timezone.now()
    with transaction.atomic():
        row = model._default_manager.select_for_update().filter(pk=pk).first()
        if row is None or row.status in DONE:
            return SKIP
        if row.status == Status.RUNNING and row.lease_expires_at and row.lease_expires_at > now:
            return SKIP  # a live run holds it; this message is a duplicate
        if row.attempts >= settings.ROUTER_FANOUT_MAX_ATTEMPTS:
            model._default_manager.filter(pk=pk).update(
                status=Status.ERROR,
                error_code="gave_up",
                error_message=f"Gave up after {row.attempts} deliveries that did not finish",
                completed_at=now,
                lease_expires_at=None,
            )
            return GAVE_UP
        attempt = row.attempts + 1
        model._default_manager.filter(pk=pk).update(
            status=Status.RUNNING, attempts=attempt, lease_expires_at=lease_until(now)
        )
        return attempt


def _logged(request_id: str) -> dict[str, Any] | None:
    """The request's finished row; a pending one is a call a dead worker left mid-way, to be run again."""
    found = (
        GatewayRequest.objects.filter(pk=request_id)
        .exclude(status=GatewayRequest.Status.PENDING)
        .values("status", "error_code", "error_message")
        .first()
    )
    return dict(found) if found is not None else None


def _finish(
    model: type[Row], pk: int, *, request_id: str, attempt: int | None, error: tuple[str, str] | None = None
) -> bool:
    """Marks the row done from its log row (or, with none, from `error`). False if another run owns it now."""
    logged = _logged(request_id)
    if logged is not None:
        status = logged["status"]
        code, message = (
            (logged["error_code"], logged["error_message"]) if status == Status.ERROR else ("", "")
        )
    else:
        status = Status.ERROR
        code, message = error or ("internal_error", "The request did not complete")
    rows = model._default_manager.filter(pk=pk).exclude(status__in=DONE)
    if attempt is not None:
        rows = rows.filter(status=Status.RUNNING, attempts=attempt)
    return bool(
        rows.update(
            status=status,
            request_id=request_id if logged is not None else None,
            error_code=code[:64],
            error_message=message,
            completed_at=timezone.now(),
            lease_expires_at=None,
        )
    )


async def _perform(work: Work) -> tuple[str, str] | None:
    """The gateway request; None on success, else (code, message)."""
    try:
        await completion_create(caller=work.caller, inp=work.inp, request_id=work.request_id)
        return None
    except ApiError as exc:
        return exc.code, exc.message


# A task is synchronous; its request runs on a loop that lives as long as the worker process (one per thread),
# so the loop's pooled httpx and Redis clients and its executor threads serve every task. A loop per task
# (asyncio.run) would rebuild them each time: about 40 ms of TLS context set-up alone, per item.
_loops = threading.local()


def _discard_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Closes the loop's clients and pool, then cancels whatever still runs: after an interruption (soft time
    limit) nothing of the interrupted request may resume in a later task."""
    try:
        loop.run_until_complete(asyncio.wait_for(_close_clients(), timeout=10))
    except Exception:  # closing is best effort; the loop goes away regardless
        logger.warning("closing a worker loop's clients failed", exc_info=True)
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending))
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


async def _close_clients() -> None:
    await aclose_clients()
    await aclose_redis()
    await close_pools()


def worker_loop_close() -> None:
    """Closes this thread's loop and its clients and database pool (worker shutdown, tests)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_loops, "loop", None)
    _loops.loop = None
    if loop is not None and not loop.is_closed() and getattr(_loops, "pid", None) == os.getpid():
        _discard_loop(loop)


def run_in_worker_loop(coro: Coroutine[Any, Any, T]) -> T:
    loop: asyncio.AbstractEventLoop | None = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed() or getattr(_loops, "pid", None) != os.getpid():
        loop = _loops.loop = asyncio.new_event_loop()  # a forked child never reuses its parent's loop
        _loops.pid = os.getpid()
    try:
        return loop.run_until_complete(coro)
    except BaseException:
        _loops.loop = None
        _discard_loop(loop)
        raise


def row_run(
    *, model: type[Row], pk: int, work_for: Callable[[Row], Work], claimed: Callable[[Row], None]
) -> bool:
    """Runs the row's request if this delivery may; True when this call finished the row.

    `work_for` builds the request from the row; `claimed` runs after a successful claim (e.g. parent running).
    """
    # Rows run in a worker: the web process never loads Celery.
    from celery.exceptions import SoftTimeLimitExceeded

    row = model._default_manager.filter(pk=pk).first()
    if row is None or row.status in DONE:
        return False
    work = work_for(row)
    if _logged(work.request_id) is not None:
        # A previous delivery logged (and charged) it, then died before marking the row: only mark it.
        return _finish(model, pk, request_id=work.request_id, attempt=None)
    attempt = _claim(model, pk)
    if attempt == GAVE_UP:
        return True
    if attempt == SKIP:
        return False
    try:
        claimed(row)
        error = run_in_worker_loop(_perform(work))
    except (IntegrityError, psycopg.IntegrityError):
        # Another run of this row logged first; its row (and its charge) is the one that counts.
        logger.warning("fan-out row %s:%s was logged by another run", model.__name__, pk)
        return _finish(model, pk, request_id=work.request_id, attempt=None)
    except SoftTimeLimitExceeded:
        error = ("timeout", "The request did not finish within the task's time limit")
    except Exception:
        # A failure of ours (database or Redis unreachable): hand the row back so the task's retry can claim
        # it at once instead of waiting for the lease to run out. Had the log row been written after all,
        # the retry finds it and only marks the row.
        _release(model, pk, attempt)
        raise
    return _finish(model, pk, request_id=work.request_id, attempt=attempt, error=error)


def _release(model: type[Row], pk: int, attempt: int) -> None:
    try:
        model._default_manager.filter(pk=pk, status=Status.RUNNING, attempts=attempt).update(
            status=Status.QUEUED, queued_at=timezone.now(), lease_expires_at=None
        )
    except DatabaseError:
        logger.warning("could not hand back %s:%s; its lease will expire instead", model.__name__, pk)


def rows_requeue_stale(model: type[Row], *, now: datetime, **parent_filter: Any) -> list[int]:
    """Rows whose worker went silent (lease expired) or whose message never arrived: queued again.

    Returns their ids, to be published again; a duplicate message is harmless (claims are conditional).
    """
    lease = timedelta(seconds=settings.ROUTER_FANOUT_LEASE_S)
    rows = model._default_manager.filter(**parent_filter)
    running = list(rows.filter(status=Status.RUNNING, lease_expires_at__lt=now).values_list("pk", flat=True))
    queued = list(rows.filter(status=Status.QUEUED, queued_at__lt=now - lease).values_list("pk", flat=True))
    if running:
        model._default_manager.filter(pk__in=running, status=Status.RUNNING, lease_expires_at__lt=now).update(
            status=Status.QUEUED, queued_at=now
        )
    if queued:
        model._default_manager.filter(pk__in=queued, status=Status.QUEUED).update(queued_at=now)
    return running + queued


# --------------------------------------------------------------------------------------------- notifying


def parent_done_notify(parent_id: str) -> None:
    """Wakes web processes waiting on this comparison or batch (best effort: waiters also poll)."""
    client = get_sync_redis()
    if client is None:
        return
    try:
        client.publish(CHANNEL_PREFIX + parent_id, b"1")
    except REDIS_ERRORS:
        logger.warning("could not publish completion of %s; waiters will see it by polling", parent_id)


class _Listener:
    """One pattern subscription per event loop, shared by every request waiting in it."""

    def __init__(self) -> None:
        self.waiters: dict[str, set[asyncio.Event]] = {}
        self.task: asyncio.Task[None] | None = None

    def add(self, parent_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self.waiters.setdefault(parent_id, set()).add(event)
        if settings.REDIS_URL and (self.task is None or self.task.done()):
            self.task = asyncio.get_running_loop().create_task(self._listen())
        return event

    def remove(self, parent_id: str, event: asyncio.Event) -> None:
        events = self.waiters.get(parent_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self.waiters[parent_id]

    async def _listen(self) -> None:
        assert settings.REDIS_URL
        # No socket timeout: the listener waits on its own timeout, and a poll that times out proves nothing.
        client = redis_async_client(socket_timeout=None)
        pubsub = client.pubsub()
        try:
            await pubsub.psubscribe(CHANNEL_PREFIX + "*")
            while self.waiters:  # stops when nobody waits; the next waiter starts it again
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None:
                    continue
                channel = message["channel"].decode()
                for event in self.waiters.get(channel.removeprefix(CHANNEL_PREFIX), ()):
                    event.set()
        except REDIS_ERRORS:
            logger.warning("completion notifications unavailable; waiting by polling")
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                await pubsub.aclose()
                await client.aclose()


_listeners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Listener] = weakref.WeakKeyDictionary()
POLL_S = 1.0


async def parent_wait(*, parent_id: str, is_done: Callable[[], Awaitable[bool]], timeout_s: float) -> bool:
    """Waits, without blocking the loop, until `is_done()` or the timeout: woken by the worker's
    notification, and checking the database every POLL_S in case a notification was missed."""
    loop = asyncio.get_running_loop()
    listener = _listeners.get(loop)
    if listener is None:
        listener = _listeners[loop] = _Listener()
    event = listener.add(parent_id)
    deadline = loop.time() + timeout_s
    try:
        while True:
            if await is_done():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=min(POLL_S, remaining))
            event.clear()
    finally:
        listener.remove(parent_id, event)


# --------------------------------------------------------------------------------------------- rendering


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def row_json(row: FanoutRow, logged: GatewayRequest | None) -> dict[str, Any]:
    """What every compared model and batch item shows: its answer, or why there is none."""
    done = row.status in DONE
    return {
        "status": row.status if done else Status.PENDING.value,
        "request_id": logged.id if logged is not None else None,
        "content": (logged.response_text or None) if logged is not None else None,
        "finish_reason": (logged.finish_reason or None) if logged is not None else None,
        "usage": usage_json_of_row(logged) if logged is not None else None,
        "latency_ms": logged.latency_ms if logged is not None else None,
        "cached": logged.cached if logged is not None else False,
        "error_code": row.error_code or None,
        "error_message": row.error_message or None,
    }
