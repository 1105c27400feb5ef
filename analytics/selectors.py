"""Reads for analytics: the request log, the overview page, catalog, keys and budget (the usage
summary itself lives in analytics.usage and is re-exported here; the request log's pages are
analytics.request_pages; the compare playground's reads are analytics.compare)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Substr
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import ApiKey, Team, TeamMembership, User
from analytics.usage import ZERO, DayUsage, spend_by_key, usage_summary, utc_today
from analytics.usage import GroupUsage as GroupUsage  # re-exported: the usage reads moved to analytics.usage
from analytics.usage import Totals as Totals
from analytics.usage import UsageSummary as UsageSummary
from analytics.usage import latency_bucket as latency_bucket
from analytics.usage import percentile_from_histogram as percentile_from_histogram
from analytics.visibility import rows_of_team, rows_personal
from budgets.models import Budget, BudgetAlert
from budgets.periods import month_start
from budgets.rules import WindowState
from budgets.selectors import (
    Webhook,
    alerts_current,
    alerts_of_user,
    team_webhook,
    windows_of_keys,
    windows_of_teams,
    windows_of_user,
)
from providers.adapters.base import Usage
from providers.models import Model, ModelPrice
from providers.pricing import CostBreakdown, cost_breakdown
from routing.models import GatewayRequest
from routing.pipeline.types import DOORS

PREVIEW_LENGTH = 50

# --- the request log


def request_list(*, rows: Q) -> QuerySet[GatewayRequest]:
    """The rows a reader sees (analytics.visibility; Q() for staff's everyone), newest first, without the heavy
    text columns; prompt_head holds enough of the prompt for a preview."""
    return (
        GatewayRequest.objects.filter(rows)
        .defer("messages", "prompt_text", "response_text", "tool_calls", "params", "candidates")
        .annotate(prompt_head=Substr("prompt_text", 1, PREVIEW_LENGTH + 1))
        .select_related("user", "api_key__team")
        .order_by("-created_at", "-id")
    )


def prompt_preview(head: str) -> str:
    return head[:PREVIEW_LENGTH] + "..." if len(head) > PREVIEW_LENGTH else head


def request_get(*, request_id: str, rows: Q) -> GatewayRequest | None:
    """One request among the rows a reader sees (Q(): staff, anyone's); any other id is simply not found."""
    qs = GatewayRequest.objects.select_related(
        "user", "price", "comparison", "batch", "api_key__team"
    ).prefetch_related("attempts")
    return qs.filter(rows, pk=request_id).first()


def request_cost_breakdown(row: GatewayRequest) -> CostBreakdown | None:
    """Where the request's money went, at the price row it was charged at (None for a hit or an unpriced row)."""
    if row.price is None or row.cached or row.status not in ("success", "error"):
        return None
    usage = Usage(
        prompt_tokens=row.input_tokens,
        completion_tokens=row.output_tokens,
        cached_tokens=row.cached_tokens,
        reasoning_tokens=row.reasoning_tokens,
        cache_write_tokens=row.cache_write_tokens,
        cache_write_1h_tokens=row.cache_write_1h_tokens,
    )
    try:
        return cost_breakdown(row.price.rates, usage)
    except ValueError:
        return None  # counts the price arithmetic refuses; the stored totals stand on their own


def request_filter_choices() -> dict[str, list[str]]:
    """Model and provider names for filter drop-downs, from the catalog (small) rather than the log (huge);
    the doors are a fixed list."""
    models = Model.objects.select_related("provider").order_by("model_id")
    return {
        "models": sorted({m.model_id for m in models}),
        "providers": sorted({m.provider.name for m in models}),
        "doors": list(DOORS),
    }


# --- the dashboard's overview


def overview_get(*, rows: Q, days: int, budget_user_id: int | None) -> dict[str, Any]:
    """The overview page's numbers over `rows`; the budget gauge only when one user's data is shown."""
    summary = usage_summary(days=days, where=rows)
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
    budget = budget_gauge(user_id=budget_user_id) if budget_user_id is not None else None
    return {"summary": summary, "chart": chart, "budget": budget}


def _plain(amount: Decimal) -> str:
    """Chart data keeps exact decimals as strings (Chart.js parses numeric strings); no float on the way."""
    text = format(amount.normalize(), "f")
    return "0" if text in ("-0", "") else text


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


def user_has_teams(*, user_id: int) -> bool:
    return TeamMembership.objects.filter(user_id=user_id).exists()


def team_choices(*, user_id: int | None) -> list[tuple[int, str]]:
    """Teams for a filter: the user's (None: staff, every team)."""
    teams = Team.objects.all() if user_id is None else Team.objects.filter(memberships__user_id=user_id)
    return list(teams.order_by("name").values_list("pk", "name"))


KEY_CHOICES_MAX = 500


def key_choices(*, user_id: int | None, staff: bool) -> list[tuple[int, str]]:
    """Keys for a filter: those whose rows the user sees (their own, their teams'); staff, the picked user's
    keys or (user_id None) the newest of everyone's."""
    if staff:
        keys = ApiKey.objects.all() if user_id is None else ApiKey.objects.filter(user_id=user_id)
    else:
        keys = ApiKey.objects.filter(Q(user_id=user_id) | Q(team__memberships__user_id=user_id)).distinct()
    keys = keys.select_related("team").order_by("-created_at", "-id")[:KEY_CHOICES_MAX]
    return [
        (key.pk, f"{key.name} ({key.prefix}…){f' · {key.team.name}' if key.team else ''}") for key in keys
    ]


def user_choices() -> QuerySet[User]:
    return User.objects.order_by("username").only("id", "username")


def user_by_username(*, username: str) -> User | None:
    return User.objects.filter(username=username).first()


def personal_key_choices(*, user_id: int) -> list[tuple[int, str]]:
    """The user's active personal keys, whose windows are theirs to set on the Budget page."""
    keys = ApiKey.objects.filter(user_id=user_id, team__isnull=True, revoked_at__isnull=True)
    return [(key.pk, key.name) for key in keys.order_by("name", "pk") if key.status == "active"]


def api_key_list(*, user_id: int) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user_id=user_id).order_by("-created_at", "-id")


def api_key_get(*, user_id: int, key_id: int) -> ApiKey | None:
    return ApiKey.objects.filter(user_id=user_id, pk=key_id).first()


@dataclass
class KeyRow:
    """A row of the API keys page: the key, what it spent this month (UTC) and its own budget windows."""

    key: ApiKey
    spent_this_month: Decimal
    windows: list[WindowState]


def key_rows(*, user_id: int, now: datetime | None = None) -> list[KeyRow]:
    return _key_rows(api_key_list(user_id=user_id).select_related("team"), now=now)


def _key_rows(queryset: QuerySet[ApiKey], *, now: datetime | None) -> list[KeyRow]:
    now = now or timezone.now()
    keys = list(queryset)
    ids = [key.pk for key in keys]
    days = (utc_today(now) - month_start(now).date()).days + 1
    spent = spend_by_key(key_ids=ids, days=days, now=now)
    windows = windows_of_keys(key_ids=ids)
    return [
        KeyRow(key=k, spent_this_month=spent.get(k.pk, ZERO), windows=windows.get(k.pk, [])) for k in keys
    ]


def team_of_member(*, user_id: int, team_id: int) -> Team | None:
    """A team the user is a member of (None: no such team, or not theirs)."""
    return Team.objects.filter(pk=team_id, memberships__user_id=user_id).first()


# --- teams


def _teams_visible(user_id: int | None) -> QuerySet[Team]:
    """A member's teams; None (staff): every team."""
    return Team.objects.all() if user_id is None else Team.objects.filter(memberships__user_id=user_id)


@dataclass
class TeamRow:
    team: Team
    members: int
    keys: int
    windows: list[WindowState]


def team_list(*, user_id: int | None) -> list[TeamRow]:
    teams = list(
        _teams_visible(user_id)
        .annotate(
            member_count=Count("memberships", distinct=True),
            key_count=Count("api_keys", filter=Q(api_keys__revoked_at__isnull=True), distinct=True),
        )
        .order_by("name")
    )
    windows = windows_of_teams(team_ids=[t.pk for t in teams])
    return [
        TeamRow(team=t, members=t.member_count, keys=t.key_count, windows=windows.get(t.pk, []))  # type: ignore[attr-defined]
        for t in teams
    ]


def team_name_taken(*, name: str) -> bool:
    return Team.objects.filter(name__iexact=name).exists()


def team_member_get(*, team: Team, user_id: int) -> User | None:
    return User.objects.filter(pk=user_id, team_memberships__team=team).first()


def team_get(*, team_id: int, user_id: int | None) -> Team | None:
    """A team the reader may see (None for staff: any); any other id is simply not found."""
    return _teams_visible(user_id).filter(pk=team_id).first()


@dataclass
class TeamPage:
    """A team's page: members, keys, its windows as budgets' rules have them, where alerts go, and what its
    keys spent over the period (by day, model and member)."""

    team: Team
    memberships: list[TeamMembership]
    keys: list[KeyRow]
    windows: list[WindowState]
    alerts: list[BudgetAlert]
    webhook: Webhook
    summary: UsageSummary

    @property
    def chart(self) -> dict[str, Any]:
        return {
            "daily": {
                "labels": [d.date.isoformat() for d in self.summary.daily],
                "requests": [d.requests for d in self.summary.daily],
                "cost": [_plain(d.cost_usd) for d in self.summary.daily],
            }
        }


def team_page_get(*, team: Team, days: int) -> TeamPage:
    windows = windows_of_teams(team_ids=[team.pk]).get(team.pk, [])
    keys = _key_rows(ApiKey.objects.filter(team=team).select_related("user", "team"), now=None)
    window_ids = [w.id for w in windows] + [w.id for row in keys for w in row.windows]
    return TeamPage(
        team=team,
        memberships=list(team.memberships.select_related("user").order_by("user__username")),
        keys=keys,
        windows=windows,
        alerts=alerts_current(window_ids=window_ids),
        webhook=team_webhook(team_id=team.pk),
        summary=usage_summary(days=days, where=rows_of_team(team_id=team.pk)),
    )


@dataclass
class BudgetPage:
    """The Budget page: every window of the user and of their personal keys as budgets' rules have them, the
    alerts those raised this period, and the user's own spending by day this period."""

    windows: list[WindowState]
    primary: WindowState | None  # the user's own monthly (or lifetime) window, the one GET /v1/budget reports
    alerts: list[BudgetAlert]
    daily: list[DayUsage]
    period_start: datetime

    @property
    def chart(self) -> dict[str, Any]:
        return {
            "daily": {
                "labels": [d.date.isoformat() for d in self.daily],
                "requests": [d.requests for d in self.daily],
                "cost": [_plain(d.cost_usd) for d in self.daily],
            }
        }


def _primary(windows: list[WindowState]) -> WindowState | None:
    own = [w for w in windows if w.scope == Budget.Scope.USER and w.period in ("monthly", "lifetime")]
    return min(own, key=lambda w: w.period) if own else None  # "lifetime" < "monthly", as budgets picks it


def budget_page_get(*, user_id: int, now: datetime | None = None) -> BudgetPage:
    """Read through budgets' selectors, never from Budget rows here: the limits, what is left and the
    period's rollover are budgets.rules', so this page and GET /v1/budget cannot disagree."""
    now = now or timezone.now()
    windows = windows_of_user(user_id=user_id)
    primary = _primary(windows)
    start = primary.period_start if primary and primary.period != "lifetime" else month_start(now)
    days = min(max((utc_today(now) - start.astimezone(UTC).date()).days + 1, 1), 365)
    daily = usage_summary(days=days, where=rows_personal(user_id=user_id), now=now).daily
    return BudgetPage(
        windows=windows,
        primary=primary,
        alerts=alerts_current(window_ids=[w.id for w in windows]),
        daily=daily,
        period_start=start,
    )


DISMISSED_ALERTS = "dismissed_budget_alerts"  # session key: ids of the alerts the user closed
DISMISSED_ALERTS_MAX = 200


def budget_alerts_shown(*, user_id: int, request: HttpRequest) -> list[BudgetAlert]:
    """The banner's alerts: this period's, of the windows that concern the user, less those they dismissed
    (an alert is one period's, so a dismissal lasts until the window resets)."""
    dismissed = set(request.session.get(DISMISSED_ALERTS, []))
    return [alert for alert in alerts_of_user(user_id=user_id) if alert.pk not in dismissed]


def budget_alert_concerns(*, user_id: int, alert_id: int) -> bool:
    return alert_id in {alert.pk for alert in alerts_of_user(user_id=user_id)}


def budget_gauge(*, user_id: int) -> WindowState | None:
    """The overview's gauge: the user's window nearest its limit, else their own monthly one."""
    windows = windows_of_user(user_id=user_id)
    limited = [w for w in windows if w.used_percentage is not None]
    if limited:
        return max(limited, key=lambda w: (w.used_percentage, -w.id))
    return _primary(windows)
