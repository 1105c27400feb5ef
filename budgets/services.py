"""Budget writes: reserve the worst case before a provider call, settle to the actual cost after.

Every write that changes an amount locks the budget row, works the new amounts out in Decimal and writes
them, so a reservation is atomic under any concurrency, from any number of processes (the row lock on
PostgreSQL; on SQLite the IMMEDIATE transactions of the embedded settings serialise writers). The sums
are never left to the database: SQLite keeps NUMERIC as floating point, where 0.0125 + 0.0075 + 0.0098325
held and freed again leaves -3.5e-18 and trips the not-negative check. Settling happens inside the
caller's transaction, the one that writes the request log row, so the log's costs and the budget's
spending can never disagree.

A reset frees only the user's own limit: `spent_usd` keeps the period's real spending, which an admin limit
always counts, and `reset_offset_usd` remembers how much of it came before the user's last reset, which
their own limit no longer counts. Only the new period (the first of the month) zeroes both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from budgets.models import Budget, Reservation
from config.api_errors import BudgetExceeded, InvalidRequest

ZERO = Decimal(0)
HUNDRED = Decimal(100)
CENT = Decimal("0.01")
MONEY_PLACES = Decimal("1E-10")  # the money columns' NUMERIC(20, 10)
# Digits enough that adding or subtracting amounts is exact: only the quantize to the column rounds.
EXACT = Context(prec=100)


@dataclass(frozen=True, slots=True)
class BudgetState:
    user_id: int
    spent: Decimal  # what the user's own limit counts: the period's spending since their last reset
    reserved: Decimal
    limit: Decimal | None  # the effective limit: the lower of the user's own and the admin's
    own_limit: Decimal | None
    admin_limit: Decimal | None
    period: str
    period_start: datetime
    period_spent: Decimal  # the period's real spending, which the admin limit counts (a reset leaves it)

    def _counted(self) -> list[tuple[Decimal, Decimal]]:
        """Each limit that is set, with the spending it counts."""
        pairs = ((self.own_limit, self.spent), (self.admin_limit, self.period_spent))
        return [(limit, spent) for limit, spent in pairs if limit is not None]

    @property
    def remaining(self) -> Decimal | None:
        """What new requests may still reserve: the least any limit leaves after its spending and the holds."""
        counted = self._counted()
        if not counted:
            return None
        return max(min(limit - spent - self.reserved for limit, spent in counted), ZERO)

    @property
    def used_percentage(self) -> Decimal | None:
        """Settled spending as a share of its limit, the most used limit's, two decimals; a zero limit is
        fully used. Before any reset both limits count the same spending, so this is spent over the lower."""
        counted = self._counted()
        if not counted:
            return None
        if any(limit == ZERO for limit, _ in counted):
            return HUNDRED
        share = max(spent * HUNDRED / limit for limit, spent in counted)
        return share.quantize(CENT, rounding=ROUND_HALF_UP)

    @property
    def resets_at(self) -> datetime | None:
        return next_month_start(self.period_start) if self.period == Budget.Period.MONTHLY else None


def effective_limit(own: Decimal | None, admin: Decimal | None) -> Decimal | None:
    limits = [value for value in (own, admin) if value is not None]
    return min(limits) if limits else None


def month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(moment: datetime) -> datetime:
    start = month_start(moment)
    return (start + timedelta(days=32)).replace(day=1)


def _money(value: Decimal) -> Decimal:
    """As NUMERIC(20, 10) stores it on PostgreSQL: ten places, halves rounded away from zero."""
    return value.quantize(MONEY_PLACES, rounding=ROUND_HALF_UP)


def _plus(total: Decimal, amount: Decimal) -> Decimal:
    return _money(EXACT.add(total, amount))


def _minus(total: Decimal, amount: Decimal) -> Decimal:
    return _money(EXACT.subtract(total, amount))


def _budget_locked(*, user_id: int) -> Budget | None:
    """The budget row, locked until the caller's transaction ends, with the amounts as they are now."""
    return Budget.objects.select_for_update().filter(user_id=user_id).first()


def _own_spent(budget: Budget) -> Decimal:
    """The spending the user's own limit counts: the period's, less what came before their last reset."""
    return _minus(budget.spent_usd, budget.reset_offset_usd)


def _limits(budget: Budget) -> list[tuple[Decimal, Decimal]]:
    """Each limit that is set, with the spending it counts (as budgets.hotpath.RESERVE_SQL counts it)."""
    pairs = ((budget.own_limit_usd, _own_spent(budget)), (budget.admin_limit_usd, budget.spent_usd))
    return [(limit, spent) for limit, spent in pairs if limit is not None]


def _after(spent: Decimal, budget: Budget, amount: Decimal) -> Decimal:
    return EXACT.add(EXACT.add(spent, budget.reserved_usd), amount)


def _fits(budget: Budget, amount: Decimal) -> bool:
    return all(limit >= _after(spent, budget, amount) for limit, spent in _limits(budget))


def _state(budget: Budget) -> BudgetState:
    return BudgetState(
        user_id=budget.user_id,
        spent=_own_spent(budget),
        reserved=budget.reserved_usd,
        limit=effective_limit(budget.own_limit_usd, budget.admin_limit_usd),
        own_limit=budget.own_limit_usd,
        admin_limit=budget.admin_limit_usd,
        period=budget.period,
        period_start=budget.period_start,
        period_spent=budget.spent_usd,
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
    Budget.objects.filter(pk=budget.pk, period_start__lt=start).update(
        spent_usd=ZERO, reset_offset_usd=ZERO, period_start=start
    )
    budget.refresh_from_db()
    return budget


def budget_state(*, user_id: int) -> BudgetState:
    return _state(budget_get_or_create(user_id=user_id))


def _usd(value: Decimal) -> str:
    return "0" if value.is_zero() else f"{value.normalize():f}"


def _refusal(budget: Budget, amount: Decimal) -> BudgetExceeded:
    """The 402, naming the limit that refused (the one with the least room) and the spending it counts."""
    limit, spent = min(_limits(budget), key=lambda pair: pair[0] - _after(pair[1], budget, ZERO))
    remaining = max(limit - _after(spent, budget, ZERO), ZERO)
    exceed = amount - remaining
    return BudgetExceeded(
        f"Budget exceeded: this request may cost up to ${_usd(amount)}, "
        f"${_usd(remaining)} of ${_usd(limit)} remains",
        extra={
            "reason": "limit_would_be_exceeded",
            "total_spent_usd": spent,
            "spending_limit_usd": limit,
            "remaining_budget_usd": remaining,
            "estimated_cost_usd": amount,
            "would_exceed_by_usd": exceed if exceed > ZERO else ZERO,
        },
    )


def budget_reserve(
    *, user_id: int, amount: Decimal, request_id: str = "", idempotency_key: str | None = None
) -> Reservation:
    """Holds `amount` against the remaining budget, or raises BudgetExceeded (402) when it does not fit.

    With an idempotency key, a delivery that comes again gets the reservation already made for the key
    (open or settled: one hold, one charge); one whose hold was released or expired is held anew.
    """
    if amount < ZERO:
        raise ValueError("a reservation cannot be negative")
    budget = budget_get_or_create(user_id=user_id)
    try:
        with transaction.atomic():
            return _reserve(budget, amount=amount, request_id=request_id, idempotency_key=idempotency_key)
    except IntegrityError:
        # Two deliveries under one key raced past the lookup; the unique key let one in, and its hold stands.
        existing = (
            Reservation.objects.filter(idempotency_key=idempotency_key).first() if idempotency_key else None
        )
        if existing is None:
            raise
        return existing


def _reserve(budget: Budget, *, amount: Decimal, request_id: str, idempotency_key: str | None) -> Reservation:
    existing = None
    if idempotency_key:
        existing = Reservation.objects.select_for_update().filter(idempotency_key=idempotency_key).first()
        if existing is not None and existing.status in (Reservation.Status.OPEN, Reservation.Status.SETTLED):
            return existing
    # Locked, checked and written in one transaction: no other hold can land between the check and the write.
    locked = Budget.objects.select_for_update().get(pk=budget.pk)
    if not _fits(locked, amount):
        raise _refusal(locked, amount)
    Budget.objects.filter(pk=budget.pk).update(reserved_usd=_plus(locked.reserved_usd, amount))
    expires_at = timezone.now() + timedelta(seconds=settings.ROUTER_RESERVATION_TTL_S)
    if existing is not None:
        Reservation.objects.filter(pk=existing.pk).update(
            status=Reservation.Status.OPEN,
            amount_usd=amount,
            settled_usd=None,
            request_id=request_id,
            expires_at=expires_at,
            closed_at=None,
        )
        existing.refresh_from_db()
        return existing
    return Reservation.objects.create(
        user_id=budget.user_id,
        amount_usd=amount,
        request_id=request_id,
        idempotency_key=idempotency_key,
        expires_at=expires_at,
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
        budget = _budget_locked(user_id=reservation.user_id)
        if budget is not None:
            Budget.objects.filter(pk=budget.pk).update(
                spent_usd=_plus(budget.spent_usd, actual_cost),
                reserved_usd=_minus(budget.reserved_usd, held),
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
        budget = _budget_locked(user_id=reservation.user_id)
        if budget is not None:
            Budget.objects.filter(pk=budget.pk).update(
                reserved_usd=_minus(budget.reserved_usd, reservation.amount_usd)
            )


def budget_charge(*, user_id: int, amount: Decimal) -> None:
    """Adds spending that had no reservation (never refused: the money is already spent)."""
    budget_get_or_create(user_id=user_id)
    with transaction.atomic():
        budget = _budget_locked(user_id=user_id)
        if budget is not None:
            Budget.objects.filter(pk=budget.pk).update(spent_usd=_plus(budget.spent_usd, amount))


def reservations_expire(*, now: datetime | None = None) -> int:
    """Releases reservations left open past their expiry (their process died). Returns how many.

    Each one locks the budget row before the reservation: a request settling several reservations holds
    the budget while it takes the next reservation, so the opposite order could deadlock against it.
    """
    moment = now or timezone.now()
    released = 0
    overdue = Reservation.objects.filter(status=Reservation.Status.OPEN, expires_at__lt=moment)
    for reservation_id, user_id in overdue.values_list("pk", "user_id"):
        with transaction.atomic():
            budget = _budget_locked(user_id=user_id)
            reservation = Reservation.objects.select_for_update().get(pk=reservation_id)
            if reservation.status != Reservation.Status.OPEN or reservation.expires_at >= moment:
                continue  # settled, released or held anew since the listing
            Reservation.objects.filter(pk=reservation_id).update(
                status=Reservation.Status.EXPIRED, settled_usd=ZERO, closed_at=moment
            )
            if budget is not None:
                Budget.objects.filter(pk=budget.pk).update(
                    reserved_usd=_minus(budget.reserved_usd, reservation.amount_usd)
                )
            released += 1
    return released


def budget_limit_set(*, user_id: int, limit_usd: Decimal | None) -> BudgetState:
    """Sets (or with None removes) the user's own limit; it may not exceed a limit an admin imposed."""
    if limit_usd is not None and limit_usd < ZERO:
        raise InvalidRequest("limit_usd must be zero or more", param="limit_usd", code="invalid_value")
    budget = budget_get_or_create(user_id=user_id)
    rows = Budget.objects.filter(pk=budget.pk)
    if limit_usd is not None:
        # Conditional, so an admin limit lowered a moment ago still wins.
        rows = rows.filter(Q(admin_limit_usd__isnull=True) | Q(admin_limit_usd__gte=limit_usd))
    if not rows.update(own_limit_usd=limit_usd):
        budget.refresh_from_db()
        admin_limit = budget.admin_limit_usd or ZERO
        raise InvalidRequest(
            f"limit_usd cannot exceed the limit an administrator set (${_usd(admin_limit)})",
            param="limit_usd",
            code="above_admin_limit",
        )
    budget.refresh_from_db()
    return _state(budget)


def budget_reset(*, user_id: int) -> BudgetState:
    """Zeroes what the user's own limit counts for the current period; limits and holds stay.

    An admin limit keeps counting the period's real spending, so a reset never lifts it, and the period
    itself (calendar-aligned) goes on: only its rollover zeroes everything. One statement, so a settle
    landing at the same moment counts either before the reset or after it, never both or neither.
    """
    budget = budget_get_or_create(user_id=user_id)
    Budget.objects.filter(pk=budget.pk).update(reset_offset_usd=F("spent_usd"))
    budget.refresh_from_db()
    return _state(budget)
