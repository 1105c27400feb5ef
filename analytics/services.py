"""Writes for analytics: keeping the daily rollups current, and clearing old prompt text (retention)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from analytics.models import DailyLatency, DailyUsage, JobState
from analytics.usage import day_start, latency_bucket_expression, log_sums
from routing.models import BatchItem, Comparison, GatewayRequest

logger = logging.getLogger(__name__)

# Requests are logged when they finish, stamped with the time they started. The rollups stop short of the
# present by the longest a request can run (ROUTER_DEADLINE_S, plus a margin), so that nothing before the
# watermark can still arrive; each refresh also rebuilds the day before the watermark, for stragglers.
REROLL_DAYS = 2
SETTLE_MARGIN_S = 60
RETENTION_BATCH = 5000


def rollup_cutoff(now: datetime | None = None) -> datetime:
    moment = (now or timezone.now()) - timedelta(seconds=settings.ROUTER_DEADLINE_S + SETTLE_MARGIN_S)
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class RollupResult:
    first_day: date
    rolled_until: datetime
    usage_rows: int
    latency_rows: int


def rollups_refresh(*, since: date | None = None, now: datetime | None = None) -> RollupResult:
    """Rebuilds the daily rollups from `since` (default: the day before the watermark's day) up to the new
    watermark, rollup_cutoff(now): whole days, then today's rows so far. Runs every few minutes, so reads
    aggregate only the last few minutes of the log live, however busy the day.

    Safe to run at any time and concurrently: the watermark row is locked for the whole rebuild, and readers
    see either the old or the new rows (one transaction), never half of each.
    """
    cutoff = rollup_cutoff(now)
    with transaction.atomic():
        state, _ = JobState.objects.select_for_update().get_or_create(name=JobState.ROLLUPS)
        if since is None and state.rolled_until is not None:
            since = state.rolled_until.astimezone(UTC).date() - timedelta(days=REROLL_DAYS - 1)
        if since is None:
            first = GatewayRequest.objects.order_by("created_at").values_list("created_at", flat=True).first()
            since = first.astimezone(UTC).date() if first else cutoff.date()
        since = min(since, cutoff.date())
        usage_rows, latency_rows = _rebuild(since, cutoff)
        state.rolled_until = cutoff
        state.save()
    return RollupResult(
        first_day=since, rolled_until=cutoff, usage_rows=usage_rows, latency_rows=latency_rows
    )


def _rebuild(first: date, until: datetime) -> tuple[int, int]:
    """Replaces the rollup rows of the days from `first` on with the log's rows from `first` to `until`."""
    DailyUsage.objects.filter(date__gte=first).delete()
    DailyLatency.objects.filter(date__gte=first).delete()
    log = GatewayRequest.objects.filter(created_at__gte=day_start(first), created_at__lt=until).annotate(
        day=TruncDate("created_at", tzinfo=UTC)
    )
    # The grouped rows are already aggregates (users x days x doors x keys x models), never the log rows.
    keys = ("user_id", "day", "door", "api_key_id", "provider", "model")
    usage = [
        DailyUsage(
            user_id=row["user_id"],
            date=row["day"],
            door=row["door"],
            api_key_id=row["api_key_id"],
            provider=row["provider"],
            model=row["model"],
            **{name: value for name, value in row.items() if name not in keys},
        )
        for row in log.values(*keys).annotate(**log_sums()).order_by().iterator()
    ]
    DailyUsage.objects.bulk_create(usage, batch_size=2000)
    latency = [
        DailyLatency(
            user_id=row["user_id"],
            date=row["day"],
            door=row["door"],
            api_key_id=row["api_key_id"],
            bucket=row["bucket"],
            count=row["n"],
        )
        for row in log.annotate(bucket=latency_bucket_expression())
        .values("user_id", "day", "door", "api_key_id", "bucket")
        .annotate(n=Count("pk"))
        .order_by()
        .iterator()
    ]
    DailyLatency.objects.bulk_create(latency, batch_size=5000)
    return len(usage), len(latency)


@dataclass(frozen=True)
class RetentionResult:
    cutoff: datetime | None
    requests_cleared: int
    comparisons_cleared: int
    batch_items_cleared: int


def retention_apply(*, now: datetime | None = None, batch_size: int = RETENTION_BATCH) -> RetentionResult:
    """Clears prompts and responses logged before ROUTER_LOG_RETENTION_DAYS ago (unset: keep everything).

    Tokens, costs, latency, status and model stay, so analytics and rollups are unchanged. Works in batches
    (short transactions, no long lock on the log) and remembers how far it got, so a run only looks at rows
    that crossed the cut-off since the previous one (less a day, for rows logged late).
    """
    days = settings.ROUTER_LOG_RETENTION_DAYS
    if not days:
        return RetentionResult(None, 0, 0, 0)
    cutoff = (now or timezone.now()) - timedelta(days=days)
    state, _ = JobState.objects.get_or_create(name=JobState.RETENTION)
    lower = state.cleared_before - timedelta(days=1) if state.cleared_before else None

    not_cleared = ~Q(prompt_text="") | ~Q(response_text="") | ~Q(messages=[]) | Q(tool_calls__isnull=False)
    pending = GatewayRequest.objects.filter(not_cleared, created_at__lt=cutoff)
    cursor = lower
    cleared = 0
    while True:
        window = pending if cursor is None else pending.filter(created_at__gte=cursor)
        batch = list(window.order_by("created_at").values_list("pk", "created_at")[:batch_size])
        if not batch:
            break
        with transaction.atomic():
            cleared += GatewayRequest.objects.filter(pk__in=[pk for pk, _ in batch]).update(
                prompt_text="", response_text="", messages=[], tool_calls=None
            )
        cursor = batch[-1][1]
        if len(batch) < batch_size:
            break

    comparisons = Comparison.objects.filter(created_at__lt=cutoff).exclude(messages=[]).update(messages=[])
    items = (
        BatchItem.objects.filter(batch__created_at__lt=cutoff, batch__status="completed")
        .exclude(payload={})
        .update(payload={})
    )
    state.cleared_before = cutoff
    state.save()
    if cleared or comparisons or items:
        logger.info(
            "retention cleared %s requests, %s comparisons, %s batch items", cleared, comparisons, items
        )
    return RetentionResult(cutoff, cleared, comparisons, items)
