"""The budget rules, once: which windows apply to a key, what each limit counts, what is left, and the exact
money arithmetic. Services (writes), selectors (reads), the hot path's SQL and the dashboard all use these.

A window has up to two limits: the owner's own, which counts the spending since the owner's last reset, and
the admin's, which counts all of the period's spending (a reset never lifts it). A window's period rolls over
by itself (calendar-aligned, UTC): whoever reads or writes it first in a new period starts it from zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal

from django.db.models import Q, QuerySet

from budgets.models import Budget
from budgets.periods import period_end, period_start

ZERO = Decimal(0)
HUNDRED = Decimal(100)
CENT = Decimal("0.01")
MONEY_PLACES = Decimal("1E-10")  # the money columns' NUMERIC(20, 10)
# Digits enough that adding or subtracting amounts is exact: only the quantize to the column rounds.
EXACT = Context(prec=100)


def money(value: Decimal) -> Decimal:
    """As NUMERIC(20, 10) stores it on PostgreSQL: ten places, halves rounded away from zero."""
    return value.quantize(MONEY_PLACES, rounding=ROUND_HALF_UP)


def plus(total: Decimal, amount: Decimal) -> Decimal:
    return money(EXACT.add(total, amount))


def minus(total: Decimal, amount: Decimal) -> Decimal:
    return money(EXACT.subtract(total, amount))


def usd(value: Decimal) -> str:
    return "0" if value.is_zero() else f"{value.normalize():f}"


def windows_for(*, user_id: int, api_key_id: int | None, team_id: int | None) -> QuerySet[Budget]:
    """Every window that applies to a call: a personal key's own and its user's, a team key's own and its
    team's (a team key's spending belongs to the team, not to the member holding it)."""
    owner = (
        Q(scope=Budget.Scope.TEAM, team_id=team_id)
        if team_id
        else Q(scope=Budget.Scope.USER, user_id=user_id)
    )
    scopes = owner | Q(scope=Budget.Scope.KEY, api_key_id=api_key_id) if api_key_id else owner
    return Budget.objects.filter(scopes).order_by("pk")


def current_start(budget: Budget, now: datetime) -> datetime | None:
    return period_start(budget.period, now)


def is_stale(budget: Budget, now: datetime) -> bool:
    """Its period ended: it counts from zero (the row is rolled over on its next write)."""
    start = current_start(budget, now)
    return start is not None and budget.period_start < start


@dataclass(frozen=True, slots=True)
class WindowState:
    """One window as it stands now (a stale period already counted as the fresh one)."""

    id: int
    scope: str
    scope_id: int
    name: str
    period: str
    own_limit: Decimal | None
    admin_limit: Decimal | None
    period_spent: Decimal  # the period's real spending, which the admin limit counts
    own_spent: Decimal  # what the own limit counts: the spending since the owner's last reset
    reserved: Decimal
    period_start: datetime
    resets_at: datetime | None
    thresholds: tuple[int, ...]

    def counted(self) -> list[tuple[Decimal, Decimal]]:
        """Each limit that is set, with the spending it counts."""
        pairs = ((self.own_limit, self.own_spent), (self.admin_limit, self.period_spent))
        return [(limit, spent) for limit, spent in pairs if limit is not None]

    @property
    def limit(self) -> Decimal | None:
        limits = [limit for limit, _ in self.counted()]
        return min(limits) if limits else None

    @property
    def spent(self) -> Decimal:
        """The spending of the limit with the least room (the own one's before any reset)."""
        binding = self._binding()
        return binding[1] if binding else self.own_spent

    def _binding(self) -> tuple[Decimal, Decimal] | None:
        counted = self.counted()
        return min(counted, key=lambda pair: pair[0] - pair[1]) if counted else None

    def fits(self, amount: Decimal) -> bool:
        return all(
            limit >= EXACT.add(EXACT.add(spent, self.reserved), amount) for limit, spent in self.counted()
        )

    @property
    def remaining(self) -> Decimal | None:
        """What new requests may still reserve: the least any limit leaves after its spending and the holds."""
        counted = self.counted()
        if not counted:
            return None
        return max(min(limit - spent - self.reserved for limit, spent in counted), ZERO)

    @property
    def used_percentage(self) -> Decimal | None:
        """Settled spending as a share of its limit (the most used limit's), two decimals; a zero limit is
        fully used."""
        counted = self.counted()
        if not counted:
            return None
        if any(limit == ZERO for limit, _ in counted):
            return HUNDRED
        share = max(spent * HUNDRED / limit for limit, spent in counted)
        return share.quantize(CENT, rounding=ROUND_HALF_UP)


def window_state(budget: Budget, now: datetime) -> WindowState:
    stale = is_stale(budget, now)
    start = current_start(budget, now) if stale else budget.period_start
    assert start is not None
    spent = ZERO if stale else budget.spent_usd
    offset = ZERO if stale else budget.reset_offset_usd
    return WindowState(
        id=budget.pk,
        scope=budget.scope,
        scope_id=budget.scope_id,
        name=window_name(budget),
        period=budget.period,
        own_limit=budget.own_limit_usd,
        admin_limit=budget.admin_limit_usd,
        period_spent=spent,
        own_spent=minus(spent, offset),
        reserved=budget.reserved_usd,
        period_start=start,
        resets_at=period_end(budget.period, start),
        thresholds=tuple(sorted(int(t) for t in budget.alert_thresholds or ())),
    )


def window_name(budget: Budget) -> str:
    owner = {
        Budget.Scope.USER: lambda: f"user {budget.user.username if budget.user else budget.user_id}",
        Budget.Scope.TEAM: lambda: f"team {budget.team.name if budget.team else budget.team_id}",
        Budget.Scope.KEY: lambda: f"key {budget.api_key.name if budget.api_key else budget.api_key_id}",
    }[Budget.Scope(budget.scope)]()
    return f"{owner} {budget.period}"
