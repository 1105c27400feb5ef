"""Budget reads, without writing: the windows that apply to a key, what is left, and alerts to show. The API,
the pipeline's "fit" policy, analytics and the dashboard all read budgets through here (budgets.rules)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey
from budgets.models import Budget, BudgetAlert
from budgets.rules import WindowState, current_start, window_state, windows_for


def _team_of(api_key_id: int | None) -> int | None:
    if api_key_id is None:
        return None
    return ApiKey.objects.filter(pk=api_key_id).values_list("team_id", flat=True).first()


def budget_windows(*, user_id: int, api_key_id: int | None) -> list[WindowState]:
    """Every window that applies to calls made with this key (or, without a key, the user's own)."""
    now = timezone.now()
    windows = windows_for(user_id=user_id, api_key_id=api_key_id, team_id=_team_of(api_key_id))
    return [window_state(b, now) for b in windows.select_related("user", "team", "api_key")]


def budget_remaining(*, user_id: int, api_key_id: int | None) -> Decimal | None:
    """The most a new request may reserve: the least any applying window leaves (None: no limit at all)."""
    left = [w.remaining for w in budget_windows(user_id=user_id, api_key_id=api_key_id)]
    limited = [value for value in left if value is not None]
    return min(limited) if limited else None


def windows_of_user(*, user_id: int) -> list[WindowState]:
    """The user's own windows and those of their personal keys (the Budget page)."""
    now = timezone.now()
    windows = Budget.objects.filter(scope=Budget.Scope.USER, user_id=user_id) | Budget.objects.filter(
        scope=Budget.Scope.KEY, api_key__user_id=user_id, api_key__team__isnull=True
    )
    return [window_state(b, now) for b in windows.select_related("user", "team", "api_key").order_by("pk")]


def windows_of_team(*, team_id: int) -> list[WindowState]:
    """The team's windows and those of its keys (the Teams page)."""
    now = timezone.now()
    windows = Budget.objects.filter(scope=Budget.Scope.TEAM, team_id=team_id) | Budget.objects.filter(
        scope=Budget.Scope.KEY, api_key__team_id=team_id
    )
    return [window_state(b, now) for b in windows.select_related("user", "team", "api_key").order_by("pk")]


def windows_of_teams(*, team_ids: list[int]) -> dict[int, list[WindowState]]:
    """Each team's own windows (not its keys'), by team id: the Teams pages."""
    now = timezone.now()
    windows = Budget.objects.filter(scope=Budget.Scope.TEAM, team_id__in=team_ids).select_related("team")
    by_team: dict[int, list[WindowState]] = {}
    for budget in windows.order_by("pk"):
        assert budget.team_id is not None
        by_team.setdefault(budget.team_id, []).append(window_state(budget, now))
    return by_team


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    has_secret: bool


def team_webhook(*, team_id: int) -> Webhook:
    """Where the team's windows POST their alerts (team_webhook_set keeps it the same on every one)."""
    row = (
        Budget.objects.filter(scope=Budget.Scope.TEAM, team_id=team_id)
        .exclude(webhook_url="")
        .values("webhook_url", "webhook_secret")
        .first()
    )
    return (
        Webhook(url=row["webhook_url"], has_secret=bool(row["webhook_secret"])) if row else Webhook("", False)
    )


def windows_of_keys(*, key_ids: list[int]) -> dict[int, list[WindowState]]:
    """Each key's own windows (the API keys page), by key id."""
    now = timezone.now()
    windows = Budget.objects.filter(scope=Budget.Scope.KEY, api_key_id__in=key_ids).select_related("api_key")
    by_key: dict[int, list[WindowState]] = {}
    for budget in windows.order_by("pk"):
        assert budget.api_key_id is not None
        by_key.setdefault(budget.api_key_id, []).append(window_state(budget, now))
    return by_key


def alerts_current(*, window_ids: list[int]) -> list[BudgetAlert]:
    """The alerts these windows raised in their current periods (the dashboard's banner)."""
    now = timezone.now()
    alerts = (
        BudgetAlert.objects.filter(budget_id__in=window_ids)
        .select_related("budget__user", "budget__team", "budget__api_key")
        .order_by("-threshold")
    )
    shown: list[BudgetAlert] = []
    for alert in alerts:
        start = current_start(alert.budget, now)
        if (start is None or alert.period_start >= start) and alert.budget_id not in {
            a.budget_id for a in shown
        }:
            shown.append(alert)
    return shown


def alerts_of_user(*, user_id: int) -> list[BudgetAlert]:
    """The alerts this period of every window that concerns the user (the dashboard's banner): their own, their
    keys' and those of the teams they are a member of now."""
    mine = (
        Q(scope=Budget.Scope.USER, user_id=user_id)
        | Q(scope=Budget.Scope.KEY, api_key__user_id=user_id)
        | Q(scope=Budget.Scope.TEAM, team__memberships__user_id=user_id)
    )
    window_ids = list(Budget.objects.filter(mine).values_list("pk", flat=True).distinct())
    return alerts_current(window_ids=window_ids) if window_ids else []
