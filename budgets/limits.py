"""The owners' limits on their own windows (a user's, or one of their keys'), under any limit an admin set,
and the reset of what those limits count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from budgets.models import Budget
from budgets.periods import PERIODS
from budgets.rules import ZERO, WindowState, current_start, usd, window_state
from budgets.services import budget_get_or_create, budget_roll
from config.api_errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class BudgetState:
    """The user's own budget in GET /v1/budget's original shape: their monthly (or lifetime) user window."""

    user_id: int
    window: WindowState

    @property
    def spent(self) -> Decimal:
        return self.window.own_spent  # what the user's own limit counts

    @property
    def limit(self) -> Decimal | None:
        return self.window.limit

    @property
    def remaining(self) -> Decimal | None:
        return self.window.remaining

    @property
    def used_percentage(self) -> Decimal | None:
        return self.window.used_percentage

    @property
    def period_spent(self) -> Decimal:
        return self.window.period_spent

    @property
    def reserved(self) -> Decimal:
        return self.window.reserved

    @property
    def own_limit(self) -> Decimal | None:
        return self.window.own_limit

    @property
    def admin_limit(self) -> Decimal | None:
        return self.window.admin_limit

    @property
    def period(self) -> str:
        return self.window.period

    @property
    def period_start(self) -> datetime:
        return self.window.period_start

    @property
    def resets_at(self) -> datetime | None:
        return self.window.resets_at


def budget_state(*, user_id: int) -> BudgetState:
    return BudgetState(
        user_id=user_id, window=window_state(budget_get_or_create(user_id=user_id), timezone.now())
    )


def _own_limit_set(budget: Budget, limit_usd: Decimal | None) -> None:
    """Conditional, so an admin limit lowered a moment ago still wins."""
    if limit_usd is not None and limit_usd < ZERO:
        raise InvalidRequest("limit_usd must be zero or more", param="limit_usd", code="invalid_value")
    rows = Budget.objects.filter(pk=budget.pk)
    if limit_usd is not None:
        rows = rows.filter(Q(admin_limit_usd__isnull=True) | Q(admin_limit_usd__gte=limit_usd))
    if not rows.update(own_limit_usd=limit_usd):
        budget.refresh_from_db()
        raise InvalidRequest(
            f"limit_usd cannot exceed the limit an administrator set (${usd(budget.admin_limit_usd or ZERO)})",
            param="limit_usd",
            code="above_admin_limit",
        )


def budget_limit_set(*, user_id: int, limit_usd: Decimal | None) -> BudgetState:
    """Sets (or with None removes) the user's own limit on their own window; not above an admin's limit."""
    _own_limit_set(budget_get_or_create(user_id=user_id), limit_usd)
    return budget_state(user_id=user_id)


def budget_window_set(
    *, user_id: int, api_key_id: int | None, scope: str, period: str, limit_usd: Decimal | None
) -> Budget | None:
    """Sets the caller's own limit on one of its windows (its user's, or the calling key's: the caller checks
    the key is theirs), creating the window; None removes the limit, and the window with it unless an admin
    limit or the user's own spending count lives there. Team windows are staff's (team_window_set)."""
    if period not in PERIODS:
        raise InvalidRequest(
            f"period must be one of {', '.join(PERIODS)}", param="period", code="invalid_value"
        )
    if scope == Budget.Scope.USER:
        owner: dict[str, int] = {"user_id": user_id}
    elif scope == Budget.Scope.KEY:
        if api_key_id is None:
            raise InvalidRequest("A key window needs its key", param="api_key", code="invalid_value")
        owner = {"api_key_id": api_key_id}
    else:
        raise InvalidRequest("scope must be 'user' or 'key'", param="scope", code="invalid_value")
    now = timezone.now()
    start = current_start(Budget(period=period), now) or now
    with transaction.atomic():
        budget, _ = Budget.objects.get_or_create(
            scope=scope, period=period, **owner, defaults={"period_start": start}
        )
        budget_roll(budget=budget, now=now)
        _own_limit_set(budget, limit_usd)
        budget.refresh_from_db()
        primary = scope == Budget.Scope.USER and period in ("monthly", "lifetime")
        if (
            limit_usd is None
            and budget.admin_limit_usd is None
            and not primary
            and budget.reserved_usd == ZERO
        ):
            budget.delete()
            return None
    return budget


def budget_reset(*, user_id: int, api_key_id: int | None = None) -> BudgetState:
    """Zeroes what the caller's own limits count for the current period: the user's windows and the calling
    key's. Limits and holds stay; an admin limit keeps counting the period's real spending, so a reset never
    lifts it, team windows aren't the caller's to reset, and the periods (calendar-aligned) go on. One
    statement, so a settle landing at the same moment counts either before the reset or after it."""
    budget_get_or_create(user_id=user_id)
    mine = Q(scope=Budget.Scope.USER, user_id=user_id)
    if api_key_id is not None:
        mine |= Q(scope=Budget.Scope.KEY, api_key_id=api_key_id)
    now = timezone.now()
    for budget in Budget.objects.filter(mine):
        budget_roll(budget=budget, now=now)
    Budget.objects.filter(mine).update(reset_offset_usd=F("spent_usd"))
    return budget_state(user_id=user_id)
