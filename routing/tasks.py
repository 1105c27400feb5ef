"""Celery tasks of the gateway: thin, each loads by id and calls a service; safe to deliver more than once."""

from __future__ import annotations

from typing import Any

import psycopg
import redis
from celery import shared_task
from celery.signals import worker_process_shutdown
from django.conf import settings
from django.db import DatabaseError

from routing.services.batch_lanes import batch_item_run, batches_resume
from routing.services.comparisons import comparison_model_run, comparisons_resume
from routing.services.fanout import worker_loop_close
from routing.services.idempotency import idempotency_records_purge
from routing.services.requests_close import requests_close_stale

# A request gives up at ROUTER_DEADLINE_S; the soft limit is the backstop that still records the row as an
# error, the hard limit kills a worker that is stuck for good (its message is then redelivered, and the
# lease, ROUTER_FANOUT_LEASE_S, outlasts it so the row is only ever run by one live worker).
SOFT_LIMIT_S = int(settings.ROUTER_DEADLINE_S) + 30
HARD_LIMIT_S = SOFT_LIMIT_S + 30
# Our own dependencies failing (database full or restarting, Redis away) is worth a prompt retry; the row
# was handed back, so the retry claims it again (each claim counts towards ROUTER_FANOUT_MAX_ATTEMPTS).
TRANSIENT = (DatabaseError, psycopg.OperationalError, redis.RedisError, OSError)
REQUEST_TASK: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "soft_time_limit": SOFT_LIMIT_S,
    "time_limit": HARD_LIMIT_S,
    "autoretry_for": TRANSIENT,
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "max_retries": 8,
}


@shared_task(**REQUEST_TASK)
def comparison_model_run_task(result_id: int) -> None:
    comparison_model_run(result_id=result_id)


@shared_task(**REQUEST_TASK)
def batch_item_run_task(item_id: int) -> None:
    batch_item_run(item_id=item_id)


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=180)
def requests_close_task() -> dict[str, int]:
    """Replays journaled outcomes and closes rows whose process died mid-call (see requests_close)."""
    return requests_close_stale()


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=60, time_limit=90)
def batches_resume_task() -> dict[str, int]:
    return {**batches_resume(), "comparisons_requeued": comparisons_resume()}


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def idempotency_records_purge_task() -> int:
    """Idempotency-Key records past their 24 hours (an expired one is also replaced when its key comes back)."""
    return idempotency_records_purge()


@worker_process_shutdown.connect
def _close_worker_loop(**_: Any) -> None:
    """A pool process going away closes its loop's connections instead of leaving them to time out."""
    worker_loop_close()
