"""Reads for analytics: usage (rollups plus the live tail of the log), the request log, catalog, budget."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import (
    Count,
    DecimalField,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Floor, Ln, Substr, TruncDate
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import ApiKey, User
from analytics.filters import RequestFilter
from analytics.models import DailyLatency, DailyUsage, JobState
from budgets.models import Budget
from providers.models import Model, ModelPrice
from routing.models import Comparison, GatewayRequest

ZERO = Decimal(0)
PREVIEW_LENGTH = 50

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


# --- usage


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
    provider: str
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


def usage_summary(*, user_id: int | None, days: int, now: datetime | None = None) -> UsageSummary:
    """The last `days` UTC calendar days including today; user_id None means every user (staff views).

    The rollups (DailyUsage / DailyLatency) answer for everything before their watermark, a few minutes ago
    when the periodic job runs; the requests after it are aggregated live from the log over the
    (user, created_at) index, so the answer is current to the second and the live part stays small.
    """
    today = utc_today(now)
    start = today - timedelta(days=days - 1)
    watermark = rollups_rolled_until()
    use_rollups = watermark is not None and watermark > day_start(start)
    live_from = watermark if use_rollups and watermark is not None else day_start(start)
    scope = Q() if user_id is None else Q(user_id=user_id)

    totals = Totals()
    groups: dict[tuple[str, str], Totals] = {}
    daily: dict[date, DayUsage] = {
        start + timedelta(days=offset): DayUsage(start + timedelta(days=offset), 0, ZERO)
        for offset in range(days)
    }
    histogram: dict[int, int] = {}

    def merge(row: Mapping[str, Any], day: date | None) -> None:
        totals.add(row)
        groups.setdefault((row["provider"], row["model"]), Totals()).add(row)
        if day is not None and day in daily:
            daily[day].requests += row["requests"]
            daily[day].cost_usd += row["cost_usd"]

    if use_rollups:
        rolled_end = live_from.astimezone(
            UTC
        ).date()  # that day's row holds its requests before the watermark
        rollups = DailyUsage.objects.filter(scope, date__gte=start, date__lte=rolled_end)
        for group in rollups.values("provider", "model").annotate(**_rollup_sums()).order_by():
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
        .values("day", "provider", "model")
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
        by_provider=_grouped(groups, totals, by_provider=True),
        by_model=_grouped(groups, totals, by_provider=False),
        daily=list(daily.values()),
    )


def _grouped(groups: dict[tuple[str, str], Totals], totals: Totals, *, by_provider: bool) -> list[GroupUsage]:
    merged: dict[str, GroupUsage] = {}
    for (provider, model), sums in groups.items():
        key = provider if by_provider else model
        entry = merged.setdefault(key, GroupUsage(name=key, provider=provider, requests=0, cost_usd=ZERO))
        entry.requests += sums.requests
        entry.cost_usd += sums.cost_usd
    for entry in merged.values():
        entry.share_of_cost = float(entry.cost_usd / totals.cost_usd) if totals.cost_usd else 0.0
        entry.share_of_requests = entry.requests / totals.requests if totals.requests else 0.0
    return sorted(merged.values(), key=lambda g: (-g.cost_usd, -g.requests, g.name))


# --- the request log


def request_list(*, user_id: int | None) -> QuerySet[GatewayRequest]:
    """Newest first, without the heavy text columns; prompt_head holds enough of the prompt for a preview."""
    qs = GatewayRequest.objects.all() if user_id is None else GatewayRequest.objects.filter(user_id=user_id)
    return (
        qs.defer("messages", "prompt_text", "response_text", "params", "candidates")
        .annotate(prompt_head=Substr("prompt_text", 1, PREVIEW_LENGTH + 1))
        .select_related("user")
        .order_by("-created_at", "-id")
    )


def prompt_preview(head: str) -> str:
    return head[:PREVIEW_LENGTH] + "..." if len(head) > PREVIEW_LENGTH else head


def request_get(*, request_id: str, user_id: int | None) -> GatewayRequest | None:
    """user_id None (staff) may read anyone's request; otherwise another user's id is simply not found."""
    qs = GatewayRequest.objects.select_related("user", "price", "comparison", "batch").prefetch_related(
        "attempts"
    )
    if user_id is not None:
        qs = qs.filter(user_id=user_id)
    return qs.filter(pk=request_id).first()


def request_filter_choices() -> dict[str, list[str]]:
    """Model and provider names for filter drop-downs, from the catalog (small) rather than the log (huge)."""
    models = Model.objects.select_related("provider").order_by("model_id")
    return {
        "models": sorted({m.model_id for m in models}),
        "providers": sorted({m.provider.name for m in models}),
    }


# --- the dashboard's overview and compare playground


def overview_get(*, user_id: int | None, days: int) -> dict[str, Any]:
    """The overview page's numbers; the budget gauge only when one user's data is shown."""
    summary = usage_summary(user_id=user_id, days=days)
    chart = {
        "daily": {
            "labels": [d.date.isoformat() for d in summary.daily],
            "requests": [d.requests for d in summary.daily],
            "cost": [_plain(d.cost_usd) for d in summary.daily],
        },
        "providers": {
            "labels": [g.name for g in summary.by_provider],
            "cost": [_plain(g.cost_usd) for g in summary.by_provider],
            "requests": [g.requests for g in summary.by_provider],
        },
    }
    budget = budget_status(user_id=user_id, with_daily=False) if user_id is not None else None
    return {"summary": summary, "chart": chart, "budget": budget}


def _plain(amount: Decimal) -> str:
    """Chart data keeps exact decimals as strings (Chart.js parses numeric strings); no float on the way."""
    text = format(amount.normalize(), "f")
    return "0" if text in ("-0", "") else text


def compare_model_choices() -> list[tuple[str, str]]:
    models = Model.objects.select_related("provider").filter(active=True, provider__active=True)
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


# --- catalog


def model_list_with_prices(*, at: datetime | None = None, order_by: str = "provider") -> QuerySet[Model]:
    """Every catalog model with the price in force annotated (one query, via correlated subqueries)."""
    moment = at or timezone.now()
    price = ModelPrice.objects.filter(model=OuterRef("pk"), effective_from__lte=moment).order_by(
        "-effective_from", "-id"
    )
    money = DecimalField(max_digits=20, decimal_places=10)
    qs = Model.objects.select_related("provider").annotate(
        input_price_per_1m_tokens=Subquery(price.values("input_per_1m")[:1], output_field=money),
        output_price_per_1m_tokens=Subquery(price.values("output_per_1m")[:1], output_field=money),
        cached_input_price_per_1m_tokens=Subquery(
            price.values("cached_input_per_1m")[:1], output_field=money
        ),
    )
    orderings = {
        "provider": ("provider__name", "model_id"),
        "model": ("model_id",),
        "input": ("input_price_per_1m_tokens", "model_id"),
        "output": ("output_price_per_1m_tokens", "model_id"),
        "context": ("-context_window", "model_id"),
    }
    return qs.order_by(*orderings.get(order_by, orderings["provider"]))


# --- users, keys, budget


def user_choices() -> QuerySet[User]:
    return User.objects.order_by("username").only("id", "username")


def user_by_username(*, username: str) -> User | None:
    return User.objects.filter(username=username).first()


def api_key_list(*, user_id: int) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user_id=user_id).order_by("-created_at", "-id")


def api_key_get(*, user_id: int, key_id: int) -> ApiKey | None:
    return ApiKey.objects.filter(user_id=user_id, pk=key_id).first()


@dataclass
class BudgetStatus:
    spent_usd: Decimal
    reserved_usd: Decimal
    limit_usd: Decimal | None
    own_limit_usd: Decimal | None
    admin_limit_usd: Decimal | None
    period: str
    period_start: datetime
    resets_at: datetime | None
    daily: list[DayUsage]

    @property
    def remaining_usd(self) -> Decimal | None:
        if self.limit_usd is None:
            return None
        return max(self.limit_usd - self.spent_usd - self.reserved_usd, ZERO)

    @property
    def used_percentage(self) -> Decimal | None:
        if self.limit_usd is None:
            return None
        if self.limit_usd == 0:
            return Decimal(100)
        return (self.spent_usd / self.limit_usd * 100).quantize(Decimal("0.1"))

    @property
    def chart(self) -> dict[str, Any]:
        return {
            "daily": {
                "labels": [d.date.isoformat() for d in self.daily],
                "requests": [d.requests for d in self.daily],
                "cost": [_plain(d.cost_usd) for d in self.daily],
            }
        }


def _month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def budget_status(*, user_id: int, now: datetime | None = None, with_daily: bool = True) -> BudgetStatus:
    """The user's budget as it stands, read without writing: no row yet means nothing spent and no limit,
    and a monthly row the budget service has not rolled over yet counts as a fresh month."""
    now = now or timezone.now()
    budget = Budget.objects.filter(user_id=user_id).first()
    month = _month_start(now)
    spent = budget.spent_usd if budget else ZERO
    reserved = budget.reserved_usd if budget else ZERO
    if budget is not None and budget.period == Budget.Period.LIFETIME:
        period, period_start, resets_at = budget.period, budget.period_start, None
    else:
        period, period_start = Budget.Period.MONTHLY.value, month
        resets_at = (month + timedelta(days=32)).replace(day=1)
        if budget is not None and budget.period_start < month:
            spent = ZERO  # the service rolls the period on the next spend; until then last month's is history
    limits = [v for v in (budget.own_limit_usd, budget.admin_limit_usd) if v is not None] if budget else []
    days = min(max((utc_today(now) - period_start.astimezone(UTC).date()).days + 1, 1), 365)
    daily = usage_summary(user_id=user_id, days=days, now=now).daily if with_daily else []
    return BudgetStatus(
        spent_usd=spent,
        reserved_usd=reserved,
        limit_usd=min(limits) if limits else None,
        own_limit_usd=budget.own_limit_usd if budget else None,
        admin_limit_usd=budget.admin_limit_usd if budget else None,
        period=period,
        period_start=period_start,
        resets_at=resets_at,
        daily=daily,
    )


@dataclass
class Page:
    rows: list[Any]
    total: int
    page: int
    per_page: int

    @property
    def total_pages(self) -> int:
        return -(-self.total // self.per_page)

    @property
    def has_previous(self) -> bool:
        return 1 < self.page <= self.total_pages + 1

    @property
    def has_next(self) -> bool:
        return self.page < self.total_pages

    @property
    def first_index(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.rows else 0

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.rows) - 1 if self.rows else 0

    def nearby_pages(self, width: int = 2) -> list[int | None]:
        """Page numbers for links: first, last and a window around the current page; None marks a gap."""
        if self.total_pages == 0:
            return []
        wanted = {1, self.total_pages, *range(self.page - width, self.page + width + 1)}
        pages = sorted(p for p in wanted if 1 <= p <= self.total_pages)
        out: list[int | None] = []
        for number in pages:
            if out and out[-1] is not None and number - out[-1] > 1:  # type: ignore[operator]
                out.append(None)
            out.append(number)
        return out


def page_of(queryset: QuerySet, *, page: int, per_page: int, total: int | None = None) -> Page:
    """One page of rows and the exact total; a page past the end is empty (and costs no row query)."""
    if total is None:
        total = queryset.count()
    offset = (page - 1) * per_page
    rows = list(queryset[offset : offset + per_page]) if offset < total else []
    return Page(rows=rows, total=total, page=page, per_page=per_page)


def request_page(*, filters: RequestFilter, user_id: int | None, page: int, per_page: int) -> Page:
    """A page of the filtered log (filters validated by the caller). The total comes from the rollups plus
    the live tail when the filters are rollup dimensions, so an unsearched list of millions of rows does not
    count them one by one; a search counts the matching rows (trigram-indexed)."""
    total = _total_from_rollups(filters, user_id=user_id)
    return page_of(filters.qs, page=page, per_page=per_page, total=total)


def _total_from_rollups(filters: RequestFilter, *, user_id: int | None) -> int | None:
    data = filters.form.cleaned_data
    start, end = data.get("start_date"), data.get("end_date")
    status, cached = data.get("status") or None, data.get("cached")
    if (data.get("search") or "").strip() or isinstance(start, datetime) or isinstance(end, datetime):
        return None
    if status and cached is not None:
        return None  # the rollups hold no status x cache cross-tab
    watermark = rollups_rolled_until()
    if watermark is None:
        return None
    watermark_day = watermark.astimezone(UTC).date()
    rolled = DailyUsage.objects.filter(date__lte=min(watermark_day, end) if end else watermark_day)
    if user_id is not None:
        rolled = rolled.filter(user_id=user_id)
    if start:
        rolled = rolled.filter(date__gte=start)
    for name in ("model", "provider"):
        if data.get(name):
            rolled = rolled.filter(**{name: data[name]})
    sums = rolled.aggregate(n=Sum("requests"), ok=Sum("successes"), hits=Sum("cache_hits"))
    requests, successes, hits = sums["n"] or 0, sums["ok"] or 0, sums["hits"] or 0
    if status:
        total = successes if status == GatewayRequest.Status.SUCCESS else requests - successes
    elif cached is not None:
        total = hits if cached else requests - hits
    else:
        total = requests
    if end is None or end >= watermark_day:
        total += filters.qs.filter(created_at__gte=watermark).count()
    return total
