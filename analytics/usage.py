"""Reads for the usage summary: the daily rollups for past days plus the live tail of the request log."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

from django.db.models import Count, DecimalField, F, IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast, Coalesce, Floor, Ln, TruncDate
from django.utils import timezone

from accounts.models import ApiKey, User
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
    provider: str  # a model's provider; the name itself for a provider; empty for other groups
    requests: int
    cost_usd: Decimal
    share_of_cost: float = 0.0
    share_of_requests: float = 0.0
    id: int | None = None  # a key's, team's or user's id (None: the requests without one)
    prefix: str = ""  # a key's display prefix
    team: str = ""  # a key's team (empty: a personal key)
    team_id: int | None = None

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
    by_key: list[GroupUsage] = field(default_factory=list)  # id None: requests made without a key
    by_team: list[GroupUsage] = field(default_factory=list)  # id None: personal keys and no key
    by_user: list[GroupUsage] = field(default_factory=list)

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
    *,
    user_id: int | None = None,
    days: int,
    door: str | None = None,
    where: Q | None = None,
    now: datetime | None = None,
) -> UsageSummary:
    """The last `days` UTC calendar days including today; user_id None means every user (staff views);
    a door counts only the requests that came through that door (None: every door); `where` narrows further,
    with lookups both the log and the rollups have (user, door, provider, model, api_key and its team: see
    analytics.visibility and analytics.filters).

    The rollups (DailyUsage / DailyLatency) answer for everything before their watermark, a few minutes ago
    when the periodic job runs; the requests after it are aggregated live from the log over the
    (user, created_at) index, so the answer is current to the second and the live part stays small. Both
    carry the door and the key, so a filter is the same WHERE on each part.
    """
    scope = Q() if user_id is None else Q(user_id=user_id)
    if door:
        scope &= Q(door=door)
    if where is not None:
        scope &= where
    parts = _parts(scope, days=days, now=now)
    start, today, rollups, live = parts.start, parts.today, parts.rollups, parts.live

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

    if rollups is not None:
        for group in rollups.values("door", "provider", "model").annotate(**_rollup_sums()).order_by():
            merge(group, None)
        per_day = rollups.values("date").annotate(r=Sum("requests"), c=_money_sum("cost_usd")).order_by()
        for day_row in per_day:
            daily[day_row["date"]].requests += day_row["r"]
            daily[day_row["date"]].cost_usd += day_row["c"]
        buckets = DailyLatency.objects.filter(scope, date__gte=start, date__lte=parts.rolled_end)
        for bucket_row in buckets.values("bucket").annotate(n=Sum("count")).order_by():
            histogram[bucket_row["bucket"]] = histogram.get(bucket_row["bucket"], 0) + bucket_row["n"]

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

    by_key = _by_key(_sums_by("api_key_id", rollups, live), totals)
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
        by_key=by_key,
        by_team=_by_team(by_key, totals),
        by_user=_by_user(_sums_by("user_id", rollups, live), totals),
    )


@dataclass(frozen=True)
class _Parts:
    """A period's two halves: the rollup rows before the watermark (None: no rollups cover the period) and
    the live log rows after it."""

    start: date
    today: date
    rollups: QuerySet[DailyUsage] | None
    rolled_end: date
    live: QuerySet[GatewayRequest]


def _parts(scope: Q, *, days: int, now: datetime | None) -> _Parts:
    today = utc_today(now)
    start = today - timedelta(days=days - 1)
    watermark = rollups_rolled_until()
    use_rollups = watermark is not None and watermark > day_start(start)
    live_from = watermark if use_rollups and watermark is not None else day_start(start)
    rolled_end = live_from.astimezone(UTC).date()  # that day's row holds its requests before the watermark
    rollups = DailyUsage.objects.filter(scope, date__gte=start, date__lte=rolled_end) if use_rollups else None
    live = GatewayRequest.objects.filter(
        scope, created_at__gte=live_from, created_at__lt=day_start(today + timedelta(days=1))
    )
    return _Parts(start=start, today=today, rollups=rollups, rolled_end=rolled_end, live=live)


def spend_by_key(*, key_ids: list[int], days: int, now: datetime | None = None) -> dict[int, Decimal]:
    """What each key spent in the last `days` UTC days (rollups plus the live tail, one GROUP BY each)."""
    if not key_ids:
        return {}
    parts = _parts(Q(api_key_id__in=key_ids), days=days, now=now)
    sums = _sums_by("api_key_id", parts.rollups, parts.live)
    return {pk: cost for pk, (_, cost) in sums.items() if pk is not None}


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
    return _ranked(list(merged.values()), totals)


def _ranked(entries: list[GroupUsage], totals: Totals) -> list[GroupUsage]:
    """With their shares of the totals, cost descending."""
    for entry in entries:
        entry.share_of_cost = float(entry.cost_usd / totals.cost_usd) if totals.cost_usd else 0.0
        entry.share_of_requests = entry.requests / totals.requests if totals.requests else 0.0
    return sorted(entries, key=lambda g: (-g.cost_usd, -g.requests, g.name))


def _sums_by(column: str, rollups: QuerySet | None, live: QuerySet) -> dict[int | None, tuple[int, Decimal]]:
    """Requests and cost per value of one id column (a key, a user), rollups and live tail together: one
    GROUP BY on each, so as many rows as there are keys or users, never as many as requests."""
    sums: dict[int | None, tuple[int, Decimal]] = {}
    parts = [live.values(column).annotate(n=Count("pk"), c=_money_sum("total_cost_usd")).order_by()]
    if rollups is not None:
        parts.append(rollups.values(column).annotate(n=Sum("requests"), c=_money_sum("cost_usd")).order_by())
    for part in parts:
        for row in part:
            requests, cost = sums.get(row[column], (0, ZERO))
            sums[row[column]] = (requests + row["n"], cost + row["c"])
    return sums


def _by_key(sums: dict[int | None, tuple[int, Decimal]], totals: Totals) -> list[GroupUsage]:
    keys = {
        key.pk: key
        for key in ApiKey.objects.filter(pk__in=[pk for pk in sums if pk is not None]).select_related("team")
    }
    entries = []
    for pk, (requests, cost) in sums.items():
        key = keys.get(pk) if pk is not None else None
        entries.append(
            GroupUsage(
                name=key.name if key else "",
                provider="",
                requests=requests,
                cost_usd=cost,
                id=key.pk if key else None,
                prefix=key.prefix if key else "",
                team=key.team.name if key and key.team else "",
                team_id=key.team_id if key else None,
            )
        )
    return _ranked(entries, totals)


def _by_team(by_key: list[GroupUsage], totals: Totals) -> list[GroupUsage]:
    """The keys' groups summed per team; personal keys and requests without a key make the id None group."""
    teams: dict[int | None, GroupUsage] = {}
    for key in by_key:
        entry = teams.setdefault(
            key.team_id, GroupUsage(name=key.team, provider="", requests=0, cost_usd=ZERO, id=key.team_id)
        )
        entry.requests += key.requests
        entry.cost_usd += key.cost_usd
    return _ranked(list(teams.values()), totals)


def _by_user(sums: dict[int | None, tuple[int, Decimal]], totals: Totals) -> list[GroupUsage]:
    names: dict[int | None, str] = dict(
        User.objects.filter(pk__in=[pk for pk in sums if pk is not None]).values_list("pk", "username")
    )
    entries = [
        GroupUsage(name=names.get(pk, ""), provider="", requests=requests, cost_usd=cost, id=pk)
        for pk, (requests, cost) in sums.items()
    ]
    return _ranked(entries, totals)
