"""Reads for the usage summary: the daily rollups for past days plus the live tail of the request log."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

from django.db.models import Count, DecimalField, F, IntegerField, Q, Sum, Value
from django.db.models.functions import Cast, Coalesce, Floor, Ln, TruncDate
from django.utils import timezone

from analytics.models import DailyLatency, DailyUsage, JobState
from routing.models import GatewayRequest

ZERO = Decimal(0)

# p95 latency comes from a histogram with logarithmic buckets (about 5% wide) stored per user and day next
# to the rollups, merged in the database for the period and for the live tail. An exact percentile_cont over
# a year of the log sorts every latency of the period (hundreds of ms at a million rows) and exists only on
# PostgreSQL; the histogram answers in milliseconds on any database, and 5% is finer than anyone reads p95.
BUCKETS_PER_E = 20


def latency_bucket(latency_ms: int) -> int:
    return math.floor(math.log(latency_ms + 1) * BUCKETS_PER_E)


def latency_bucket_expression() -> Cast:
    return Cast(Floor(Ln(F("latency_ms") + 1) * BUCKETS_PER_E), output_field=IntegerField())


def _bucket_bounds(bucket: int) -> tuple[float, float]:
    return math.exp(bucket / BUCKETS_PER_E) - 1, math.exp((bucket + 1) / BUCKETS_PER_E) - 1


def percentile_from_histogram(counts: dict[int, int], fraction: float) -> int | None:
    """Nearest-rank percentile, interpolated inside the bucket it falls in."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for bucket in sorted(counts):
        count = counts[bucket]
        if seen + count >= rank:
            low, high = _bucket_bounds(bucket)
            position = (rank - seen - 0.5) / count
            return round(low + (high - low) * position)
        seen += count
    return None  # unreachable: rank <= total


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def utc_today(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(UTC).date()


@dataclass
class Totals:
    requests: int = 0
    successes: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = ZERO
    cache_savings_usd: Decimal = ZERO
    latency_sum_ms: int = 0

    def add(self, row: Mapping[str, Any]) -> None:
        self.requests += row["requests"] or 0
        self.successes += row["successes"] or 0
        self.cache_hits += row["cache_hits"] or 0
        self.input_tokens += row["input_tokens"] or 0
        self.output_tokens += row["output_tokens"] or 0
        self.cost_usd += row["cost_usd"] or ZERO
        self.cache_savings_usd += row["cache_savings_usd"] or ZERO
        self.latency_sum_ms += row["latency_sum_ms"] or 0


@dataclass
class GroupUsage:
    name: str
    provider: str  # a model's provider; the name itself for a provider; empty for a door
    requests: int
    cost_usd: Decimal
    share_of_cost: float = 0.0
    share_of_requests: float = 0.0

    @property
    def avg_cost_usd(self) -> Decimal:
        return self.cost_usd / self.requests if self.requests else ZERO


@dataclass
class DayUsage:
    date: date
    requests: int
    cost_usd: Decimal


@dataclass
class UsageSummary:
    days: int
    start: date
    end: date
    totals: Totals
    p95_latency_ms: int | None
    by_provider: list[GroupUsage] = field(default_factory=list)
    by_model: list[GroupUsage] = field(default_factory=list)
    daily: list[DayUsage] = field(default_factory=list)
    by_door: list[GroupUsage] = field(default_factory=list)

    @property
    def total_requests(self) -> int:
        return self.totals.requests

    @property
    def total_cost_usd(self) -> Decimal:
        return self.totals.cost_usd

    @property
    def avg_latency_ms(self) -> Decimal:
        if not self.totals.requests:
            return ZERO
        return (Decimal(self.totals.latency_sum_ms) / self.totals.requests).quantize(Decimal("0.1"))

    @property
    def avg_cost_usd(self) -> Decimal:
        return self.totals.cost_usd / self.totals.requests if self.totals.requests else ZERO

    @property
    def success_rate(self) -> Decimal:
        if not self.totals.requests:
            return ZERO
        return (Decimal(self.totals.successes) / self.totals.requests).quantize(Decimal("0.001"))

    @property
    def cache_hit_rate(self) -> Decimal:
        if not self.totals.requests:
            return ZERO
        return (Decimal(self.totals.cache_hits) / self.totals.requests).quantize(Decimal("0.001"))


def _money_sum(expression: str) -> Coalesce:
    return Coalesce(Sum(expression), Value(ZERO), output_field=DecimalField(max_digits=30, decimal_places=10))


def log_sums() -> dict[str, Any]:
    """Aggregates over request-log rows, named like the DailyUsage columns (used by the rollup job too)."""
    return {
        "requests": Count("pk"),
        "successes": Count("pk", filter=Q(status=GatewayRequest.Status.SUCCESS)),
        "cache_hits": Count("pk", filter=Q(cached=True)),
        "input_tokens": Coalesce(Sum("input_tokens"), 0),
        "output_tokens": Coalesce(Sum("output_tokens"), 0),
        "cost_usd": _money_sum("total_cost_usd"),
        "cache_savings_usd": _money_sum("cache_savings_usd"),
        "latency_sum_ms": Coalesce(Sum("latency_ms"), 0),
    }


def _rollup_sums() -> dict[str, Any]:
    return {
        name: (_money_sum(name) if name.endswith("_usd") else Coalesce(Sum(name), 0))
        for name in (
            "requests",
            "successes",
            "cache_hits",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "cache_savings_usd",
            "latency_sum_ms",
        )
    }


def rollups_rolled_until() -> datetime | None:
    """The rollups hold every request created before this moment (None: never refreshed yet)."""
    return JobState.objects.filter(name=JobState.ROLLUPS).values_list("rolled_until", flat=True).first()


GroupKey = tuple[str, str, str]  # (door, provider, model): the dimensions a usage group is keyed by


def usage_summary(
    *, user_id: int | None, days: int, door: str | None = None, now: datetime | None = None
) -> UsageSummary:
    """The last `days` UTC calendar days including today; user_id None means every user (staff views);
    a door counts only the requests that came through that door (None: every door).

    The rollups (DailyUsage / DailyLatency) answer for everything before their watermark, a few minutes ago
    when the periodic job runs; the requests after it are aggregated live from the log over the
    (user, created_at) index, so the answer is current to the second and the live part stays small. Both
    carry the door, so a door filter is the same WHERE on each part.
    """
    today = utc_today(now)
    start = today - timedelta(days=days - 1)
    watermark = rollups_rolled_until()
    use_rollups = watermark is not None and watermark > day_start(start)
    live_from = watermark if use_rollups and watermark is not None else day_start(start)
    scope = Q() if user_id is None else Q(user_id=user_id)
    if door:
        scope &= Q(door=door)

    totals = Totals()
    groups: dict[GroupKey, Totals] = {}
    daily: dict[date, DayUsage] = {
        start + timedelta(days=offset): DayUsage(start + timedelta(days=offset), 0, ZERO)
        for offset in range(days)
    }
    histogram: dict[int, int] = {}

    def merge(row: Mapping[str, Any], day: date | None) -> None:
        totals.add(row)
        groups.setdefault((row["door"], row["provider"], row["model"]), Totals()).add(row)
        if day is not None and day in daily:
            daily[day].requests += row["requests"]
            daily[day].cost_usd += row["cost_usd"]

    if use_rollups:
        # That day's row holds its requests before the watermark.
        rolled_end = live_from.astimezone(UTC).date()
        rollups = DailyUsage.objects.filter(scope, date__gte=start, date__lte=rolled_end)
        for group in rollups.values("door", "provider", "model").annotate(**_rollup_sums()).order_by():
            merge(group, None)
        per_day = rollups.values("date").annotate(r=Sum("requests"), c=_money_sum("cost_usd")).order_by()
        for day_row in per_day:
            daily[day_row["date"]].requests += day_row["r"]
            daily[day_row["date"]].cost_usd += day_row["c"]
        buckets = DailyLatency.objects.filter(scope, date__gte=start, date__lte=rolled_end)
        for bucket_row in buckets.values("bucket").annotate(n=Sum("count")).order_by():
            histogram[bucket_row["bucket"]] = histogram.get(bucket_row["bucket"], 0) + bucket_row["n"]

    live = GatewayRequest.objects.filter(
        scope, created_at__gte=live_from, created_at__lt=day_start(today + timedelta(days=1))
    )
    live_rows = (
        live.annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "door", "provider", "model")
        .annotate(**log_sums())
        .order_by()
    )
    for live_row in live_rows:
        merge(live_row, live_row["day"])
    live_buckets = live.annotate(bucket=latency_bucket_expression()).values("bucket").annotate(n=Count("pk"))
    for live_bucket in live_buckets.order_by():
        histogram[live_bucket["bucket"]] = histogram.get(live_bucket["bucket"], 0) + live_bucket["n"]

    return UsageSummary(
        days=days,
        start=start,
        end=today,
        totals=totals,
        p95_latency_ms=percentile_from_histogram(histogram, 0.95),
        by_provider=_grouped(groups, totals, by="provider"),
        by_model=_grouped(groups, totals, by="model"),
        daily=list(daily.values()),
        by_door=_grouped(groups, totals, by="door"),
    )


def _grouped(
    groups: dict[GroupKey, Totals], totals: Totals, *, by: Literal["door", "provider", "model"]
) -> list[GroupUsage]:
    """One dimension of the (door, provider, model) groups, cost descending."""
    merged: dict[str, GroupUsage] = {}
    for (door, provider, model), sums in groups.items():
        key = {"door": door, "provider": provider, "model": model}[by]
        entry = merged.setdefault(
            key,
            GroupUsage(name=key, provider="" if by == "door" else provider, requests=0, cost_usd=ZERO),
        )
        entry.requests += sums.requests
        entry.cost_usd += sums.cost_usd
    for entry in merged.values():
        entry.share_of_cost = float(entry.cost_usd / totals.cost_usd) if totals.cost_usd else 0.0
        entry.share_of_requests = entry.requests / totals.requests if totals.requests else 0.0
    return sorted(merged.values(), key=lambda g: (-g.cost_usd, -g.requests, g.name))
