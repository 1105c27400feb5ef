"""Staff's team windows: a team's limits per period, and the webhook its windows POST their alerts to."""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from budgets.models import Budget
from budgets.periods import PERIODS
from budgets.rules import ZERO, current_start
from budgets.services import budget_roll
from config.api_errors import InvalidRequest


def team_window_set(
    *, team_id: int, period: str, own_limit_usd: Decimal | None, admin_limit_usd: Decimal | None
) -> Budget | None:
    """Staff set a team's window for one period: both its limits (a team's own limit is staff's too, so unlike
    a user's it may be set above the admin's: the lower one counts). A new window takes the team's alert
    webhook. Both None removes the window, unless requests in flight hold money in it (then it stays,
    without limits, and counts them)."""
    if period not in PERIODS:
        raise InvalidRequest(
            f"period must be one of {', '.join(PERIODS)}", param="period", code="invalid_value"
        )
    for name, value in (("own_limit_usd", own_limit_usd), ("admin_limit_usd", admin_limit_usd)):
        if value is not None and value < ZERO:
            raise InvalidRequest(f"{name} must be zero or more", param=name, code="invalid_value")
    now = timezone.now()
    start = current_start(Budget(period=period), now) or now
    removing = own_limit_usd is None and admin_limit_usd is None
    with transaction.atomic():
        team_windows = Budget.objects.filter(scope=Budget.Scope.TEAM, team_id=team_id)
        if removing and not team_windows.filter(period=period).exists():
            return None
        sibling = team_windows.exclude(webhook_url="").first()
        budget, _ = Budget.objects.get_or_create(
            scope=Budget.Scope.TEAM,
            team_id=team_id,
            period=period,
            defaults={
                "period_start": start,
                "webhook_url": sibling.webhook_url if sibling else "",
                "webhook_secret": sibling.webhook_secret if sibling else "",
            },
        )
        budget = Budget.objects.select_for_update().get(pk=budget.pk)
        budget_roll(budget=budget, now=now)
        if removing and budget.reserved_usd == ZERO:
            budget.delete()
            return None
        Budget.objects.filter(pk=budget.pk).update(
            own_limit_usd=own_limit_usd, admin_limit_usd=admin_limit_usd
        )
        budget.refresh_from_db()
    return budget


def team_webhook_set(*, team_id: int, url: str, new_secret: bool = False) -> str | None:
    """Sets where the team's windows POST their alerts (empty: nowhere). A URL gets a signing secret the first
    time, or a fresh one when asked; the new secret is returned (shown once on the dashboard), else None."""
    windows = Budget.objects.filter(scope=Budget.Scope.TEAM, team_id=team_id)
    if url and not windows.exists():
        raise InvalidRequest(
            "The team has no budget window to alert on yet: add one first",
            param="webhook_url",
            code="no_window",
        )
    has_secret = windows.exclude(webhook_secret="").exists()
    secret = secrets.token_urlsafe(32) if url and (new_secret or not has_secret) else None
    changes: dict[str, str] = {"webhook_url": url}
    if not url:
        changes["webhook_secret"] = ""
    elif secret is not None:
        changes["webhook_secret"] = secret
    windows.update(**changes)
    return secret
