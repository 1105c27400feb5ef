"""Budget writes: reserve the worst case before a provider call, settle to the actual cost after.

Reservations are one conditional UPDATE on the budget row (atomic in PostgreSQL under any concurrency, from
any number of processes) plus a ledger row. Settling happens inside the caller's transaction, the one that
writes the request log row, so the log's costs and the budget's spending can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from budgets.models import Budget, Reservation
from config.api_errors import BudgetExceeded, InvalidRequest

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class BudgetState:
    spent: Decimal
    reserved: Decimal
    limit: Decimal | None  # the effective limit: the lower of the user's own and the admin's
    own_limit: Decimal | None
    admin_limit: Decimal | None
    period: str
    period_start: datetime

    @property
    def remaining(self) -> Decimal | None:
        if self.limit is None:
            return None
        return max(self.limit - self.spent - self.reserved, ZERO)


def effective_limit(own: Decimal | None, admin: Decimal | None) -> Decimal | None:
    limits = [value for value in (own, admin) if value is not None]
    return min(limits) if limits else None


def month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(moment: datetime) -> datetime:
    start = month_start(moment)
    return (start + timedelta(days=32)).replace(day=1)


def _state(budget: Budget) -> BudgetState:
    return BudgetState(
        spent=budget.spent_usd,
        reserved=budget.reserved_usd,
        limit=effective_limit(budget.own_limit_usd, budget.admin_limit_usd),
        own_limit=budget.own_limit_usd,
        admin_limit=budget.admin_limit_usd,
        period=budget.period,
        period_start=budget.period_start,
    )


def budget_get_or_create(*, user_id: int) -> Budget:
    budget = Budget.objects.filter(user_id=user_id).first()
    if budget is None:
        budget, _ = Budget.objects.get_or_create(
            user_id=user_id, defaults={"period_start": month_start(timezone.now())}
        )
    return _roll_period(budget)


def _roll_period(budget: Budget) -> Budget:
    """A monthly budget starts over on the first of each month (UTC); the conditional update makes it once."""
    if budget.period != Budget.Period.MONTHLY:
        return budget
    start = month_start(timezone.now())
    if budget.period_start >= start:
        return budget
    Budget.objects.filter(pk=budget.pk, period_start__lt=start).update(spent_usd=ZERO, period_start=start)
    budget.refresh_from_db()
    return budget


def budget_state(*, user_id: int) -> BudgetState:
    return _state(budget_get_or_create(user_id=user_id))


def _refusal(state: BudgetState, amount: Decimal) -> BudgetExceeded:
    remaining = state.remaining if state.remaining is not None else ZERO
    exceed = amount - remaining
    return BudgetExceeded(
        f"Budget exceeded: this request may cost up to ${amount.normalize():f}, "
        f"${remaining.normalize():f} of ${state.limit.normalize() if state.limit is not None else 0:f} remains",
        extra={
            "reason": "limit_would_be_exceeded",
            "total_spent_usd": state.spent,
            "spending_limit_usd": state.limit,
            "remaining_budget_usd": remaining,
            "estimated_cost_usd": amount,
            "would_exceed_by_usd": exceed if exceed > ZERO else ZERO,
        },
    )


def budget_reserve(
    *, user_id: int, amount: Decimal, request_id: str = "", idempotency_key: str | None = None
) -> Reservation:
    """Holds `amount` against the remaining budget, or raises BudgetExceeded (402) when it does not fit."""
    if amount < ZERO:
        raise ValueError("a reservation cannot be negative")
    budget = budget_get_or_create(user_id=user_id)
    with transaction.atomic():
        if idempotency_key:
            existing = Reservation.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
        total_after = F("spent_usd") + F("reserved_usd") + amount
        fits = (Q(own_limit_usd__isnull=True) | Q(own_limit_usd__gte=total_after)) & (
            Q(admin_limit_usd__isnull=True) | Q(admin_limit_usd__gte=total_after)
        )
        updated = Budget.objects.filter(pk=budget.pk).filter(fits).update(reserved_usd=F("reserved_usd") + amount)
        if not updated:
            budget.refresh_from_db()
            raise _refusal(_state(budget), amount)
        return Reservation.objects.create(
            user_id=user_id,
            amount_usd=amount,
            request_id=request_id,
            idempotency_key=idempotency_key,
            expires_at=timezone.now() + timedelta(seconds=settings.ROUTER_RESERVATION_TTL_S),
        )


def budget_settle(*, reservation_id: int, actual_cost: Decimal) -> None:
    """Charges the actual cost and frees the reservation. Call inside the transaction that writes the log.

    If the reservation already expired (its process was presumed dead), the hold is gone but the money
    was still spent: it is charged all the same, because the log row says so.
    """
    with transaction.atomic():
        reservation = Reservation.objects.select_for_update().get(pk=reservation_id)
        if reservation.status == Reservation.Status.SETTLED:
            return  # settled exactly once, whatever retried
        held = reservation.amount_usd if reservation.status == Reservation.Status.OPEN else ZERO
        Reservation.objects.filter(pk=reservation_id).update(
            status=Reservation.Status.SETTLED, settled_usd=actual_cost, closed_at=timezone.now()
        )
        Budget.objects.filter(user_id=reservation.user_id).update(
            spent_usd=F("spent_usd") + actual_cost, reserved_usd=F("reserved_usd") - held
        )


def budget_release(*, reservation_id: int) -> None:
    """Frees a reservation whose call failed before costing anything."""
    with transaction.atomic():
        reservation = Reservation.objects.select_for_update().get(pk=reservation_id)
        if reservation.status != Reservation.Status.OPEN:
            return
        Reservation.objects.filter(pk=reservation_id).update(
            status=Reservation.Status.RELEASED, settled_usd=ZERO, closed_at=timezone.now()
        )
        Budget.objects.filter(user_id=reservation.user_id).update(
            reserved_usd=F("reserved_usd") - reservation.amount_usd
        )


def budget_charge(*, user_id: int, amount: Decimal) -> None:
    """Adds spending that had no reservation (never refused: the money is already spent)."""
    budget_get_or_create(user_id=user_id)
    Budget.objects.filter(user_id=user_id).update(spent_usd=F("spent_usd") + amount)


def reservations_expire(*, now: datetime | None = None) -> int:
    """Releases reservations left open past their expiry (their process died). Returns how many."""
    moment = now or timezone.now()
    released = 0
    for reservation_id in Reservation.objects.filter(
        status=Reservation.Status.OPEN, expires_at__lt=moment
    ).values_list("pk", flat=True):
        with transaction.atomic():
            reservation = Reservation.objects.select_for_update().get(pk=reservation_id)
            if reservation.status != Reservation.Status.OPEN:
                continue
            Reservation.objects.filter(pk=reservation_id).update(
                status=Reservation.Status.EXPIRED, settled_usd=ZERO, closed_at=moment
            )
            Budget.objects.filter(user_id=reservation.user_id).update(
                reserved_usd=F("reserved_usd") - reservation.amount_usd
            )
            released += 1
    return released


def budget_limit_set(*, user_id: int, limit_usd: Decimal | None) -> BudgetState:
    """Sets (or with None removes) the user's own limit; it may not exceed a limit an admin imposed."""
    if limit_usd is not None and limit_usd < ZERO:
        raise InvalidRequest("limit_usd must be zero or more", param="limit_usd", code="invalid_value")
    budget = budget_get_or_create(user_id=user_id)
    if limit_usd is not None and budget.admin_limit_usd is not None and limit_usd > budget.admin_limit_usd:
        raise InvalidRequest(
            f"limit_usd cannot exceed the limit an administrator set (${budget.admin_limit_usd.normalize():f})",
            param="limit_usd",
            code="above_admin_limit",
        )
    Budget.objects.filter(pk=budget.pk).update(own_limit_usd=limit_usd)
    budget.refresh_from_db()
    return _state(budget)


def budget_reset(*, user_id: int) -> BudgetState:
    """Zeroes spending for the current period; limits (the admin's included) stay."""
    budget = budget_get_or_create(user_id=user_id)
    Budget.objects.filter(pk=budget.pk).update(spent_usd=ZERO, period_start=timezone.now())
    budget.refresh_from_db()
    return _state(budget)
