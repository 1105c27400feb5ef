"""Budget writes: reserve the worst case in every window that applies before a provider call, settle to the
actual cost after (or release, charge, expire), and the windows' roll into a new period.

Every write that changes an amount locks the windows (in id order, so two writers never deadlock), works the
new amounts out in Decimal (budgets.rules) and writes them, so a reservation is atomic under any concurrency,
from any number of processes: all its windows or none (the row locks on PostgreSQL; on SQLite the IMMEDIATE
transactions of the embedded settings serialise writers). The sums are never left to the database: SQLite
keeps NUMERIC as floating point. Settling happens inside the caller's transaction, the one that writes the
request log row, so the log's costs and the windows' spending can never disagree. A reservation made in one
period settles into that period: a window that rolled over since does not count it.

budgets.hotpath has the same reserve, settle and release as single statements for PostgreSQL's hot path;
budgets.limits sets the owners' and admins' limits, budgets.team_windows staff's team windows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiKey, TeamMembership
from budgets.models import Budget, Reservation, ReservationHold
from budgets.periods import month_start, next_month_start
from budgets.rules import ZERO, current_start, is_stale, minus, plus, usd, window_state, windows_for
from config.api_errors import BudgetExceeded, PermissionDenied

__all__ = ["month_start", "next_month_start"]


# --------------------------------------------------------------------------------------------- windows


def budget_roll(*, budget: Budget, now: datetime) -> Budget:
    """A window whose period ended starts over from zero; the conditional update makes it happen once."""
    if not is_stale(budget, now):
        return budget
    start = current_start(budget, now)
    Budget.objects.filter(pk=budget.pk, period_start__lt=start).update(
        spent_usd=ZERO, reset_offset_usd=ZERO, period_start=start
    )
    budget.refresh_from_db()
    return budget


def budget_get_or_create(*, user_id: int) -> Budget:
    """The user's own window (monthly unless they have a lifetime one): created on first use, without limits,
    so the user's spending is counted from their first call."""
    budget = (
        Budget.objects.filter(scope=Budget.Scope.USER, user_id=user_id, period__in=("monthly", "lifetime"))
        .order_by("period")  # "lifetime" < "monthly": a legacy lifetime budget stays the user's own
        .first()
    )
    if budget is None:
        try:
            with transaction.atomic():
                budget = Budget.objects.create(
                    scope=Budget.Scope.USER, user_id=user_id, period_start=month_start(timezone.now())
                )
        except IntegrityError:
            budget = Budget.objects.get(scope=Budget.Scope.USER, user_id=user_id, period="monthly")
    return budget_roll(budget=budget, now=timezone.now())


def _key_team(api_key_id: int | None, user_id: int) -> int | None:
    """The team whose key this is (None: a personal key). Its holder must still be a member."""
    if api_key_id is None:
        return None
    team_id = ApiKey.objects.filter(pk=api_key_id).values_list("team_id", flat=True).first()
    if team_id is not None and not TeamMembership.objects.filter(team_id=team_id, user_id=user_id).exists():
        raise PermissionDenied(
            "This team key's holder is no longer a member of its team", code="not_a_team_member"
        )
    return team_id


def _windows_locked(*, user_id: int, api_key_id: int | None) -> list[Budget]:
    """Every applicable window, rolled over if its period ended, locked in id order (call in a transaction)."""
    team_id = _key_team(api_key_id, user_id)
    if team_id is None:
        budget_get_or_create(user_id=user_id)
    now = timezone.now()
    windows = list(windows_for(user_id=user_id, api_key_id=api_key_id, team_id=team_id).select_for_update())
    return [budget_roll(budget=budget, now=now) for budget in windows]


def _refusal(budget: Budget, amount: Decimal) -> BudgetExceeded:
    """The 402, naming the window that refused, the limit with the least room and when the window resets."""
    state = window_state(budget, timezone.now())
    limit, spent = min(state.counted(), key=lambda pair: pair[0] - pair[1] - state.reserved)
    remaining = max(limit - spent - state.reserved, ZERO)
    exceed = amount - remaining
    resets = f"; it resets at {state.resets_at:%Y-%m-%d %H:%M} UTC" if state.resets_at else ""
    return BudgetExceeded(
        f"Budget exceeded: this request may cost up to ${usd(amount)}, "
        f"${usd(remaining)} of ${usd(limit)} remains in the {state.period} budget of {state.name.rsplit(' ', 1)[0]}"
        + resets,
        extra={
            "reason": "limit_would_be_exceeded",
            "total_spent_usd": spent,
            "spending_limit_usd": limit,
            "remaining_budget_usd": remaining,
            "estimated_cost_usd": amount,
            "would_exceed_by_usd": exceed if exceed > ZERO else ZERO,
            "window": {
                "scope": state.scope,
                "scope_id": state.scope_id,
                "period": state.period,
                "resets_at": state.resets_at.isoformat() if state.resets_at else None,
            },
        },
    )


# --------------------------------------------------------------------------------------------- reserve, settle


def budget_reserve(
    *,
    user_id: int,
    amount: Decimal,
    request_id: str = "",
    idempotency_key: str | None = None,
    api_key_id: int | None = None,
) -> Reservation:
    """Holds `amount` in every window that applies, or raises BudgetExceeded (402) naming the window where it
    does not fit, holding nothing.

    With an idempotency key, a delivery that comes again gets the reservation already made for the key
    (open or settled: one hold, one charge); one whose hold was released or expired is held anew.
    """
    if amount < ZERO:
        raise ValueError("a reservation cannot be negative")
    try:
        with transaction.atomic():
            return _reserve(
                user_id=user_id,
                api_key_id=api_key_id,
                amount=amount,
                request_id=request_id,
                idempotency_key=idempotency_key,
            )
    except IntegrityError:
        # Two deliveries under one key raced past the lookup; the unique key let one in, and its hold stands.
        existing = (
            Reservation.objects.filter(idempotency_key=idempotency_key).first() if idempotency_key else None
        )
        if existing is None:
            raise
        return existing


def _reserve(
    *, user_id: int, api_key_id: int | None, amount: Decimal, request_id: str, idempotency_key: str | None
) -> Reservation:
    existing = None
    if idempotency_key:
        existing = Reservation.objects.select_for_update().filter(idempotency_key=idempotency_key).first()
        if existing is not None and existing.status in (Reservation.Status.OPEN, Reservation.Status.SETTLED):
            return existing
    # Locked, checked and written in one transaction: no other hold can land between the check and the write.
    windows = _windows_locked(user_id=user_id, api_key_id=api_key_id)
    now = timezone.now()
    for budget in windows:
        if not window_state(budget, now).fits(amount):
            raise _refusal(budget, amount)
    for budget in windows:
        Budget.objects.filter(pk=budget.pk).update(reserved_usd=plus(budget.reserved_usd, amount))
    expires_at = now + timedelta(seconds=settings.ROUTER_RESERVATION_TTL_S)
    if existing is not None:
        Reservation.objects.filter(pk=existing.pk).update(
            status=Reservation.Status.OPEN,
            amount_usd=amount,
            settled_usd=None,
            request_id=request_id,
            created_at=now,
            expires_at=expires_at,
            closed_at=None,
        )
        ReservationHold.objects.filter(reservation=existing).delete()
        reservation = existing
        reservation.refresh_from_db()
    else:
        reservation = Reservation.objects.create(
            user_id=user_id,
            amount_usd=amount,
            request_id=request_id,
            idempotency_key=idempotency_key,
            created_at=now,
            expires_at=expires_at,
        )
    ReservationHold.objects.bulk_create(ReservationHold(reservation=reservation, budget=b) for b in windows)
    return reservation


def _held_windows(reservation: Reservation) -> list[Budget]:
    return list(Budget.objects.filter(holds__reservation=reservation).order_by("pk").select_for_update())


def budget_settle(*, reservation_id: int, actual_cost: Decimal) -> None:
    """Charges the actual cost to the windows it held and frees the hold. Call inside the transaction that
    writes the log.

    If the reservation already expired (its process was presumed dead), the hold is gone but the money
    was still spent: it is charged all the same, because the log row says so. A window whose period rolled
    over since the reservation frees the hold but doesn't count the cost (it belongs to the period before).
    """
    with transaction.atomic():
        reservation = Reservation.objects.select_for_update().get(pk=reservation_id)
        if reservation.status == Reservation.Status.SETTLED:
            return  # settled exactly once, whatever retried
        held = reservation.amount_usd if reservation.status == Reservation.Status.OPEN else ZERO
        Reservation.objects.filter(pk=reservation_id).update(
            status=Reservation.Status.SETTLED, settled_usd=actual_cost, closed_at=timezone.now()
        )
        for budget in _held_windows(reservation):
            same_period = budget.period_start <= reservation.created_at
            Budget.objects.filter(pk=budget.pk).update(
                spent_usd=plus(budget.spent_usd, actual_cost) if same_period else budget.spent_usd,
                reserved_usd=minus(budget.reserved_usd, held),
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
        for budget in _held_windows(reservation):
            Budget.objects.filter(pk=budget.pk).update(
                reserved_usd=minus(budget.reserved_usd, reservation.amount_usd)
            )


def budget_charge(*, user_id: int, amount: Decimal, api_key_id: int | None = None) -> None:
    """Adds spending that had no reservation to the windows that apply (never refused: it is spent)."""
    with transaction.atomic():
        for budget in _windows_locked(user_id=user_id, api_key_id=api_key_id):
            Budget.objects.filter(pk=budget.pk).update(spent_usd=plus(budget.spent_usd, amount))


def reservations_expire(*, now: datetime | None = None) -> int:
    """Releases reservations left open past their expiry (their process died and stopped renewing them).

    Each one locks its windows (in id order, as reserve does) before the reservation.
    """
    moment = now or timezone.now()
    released = 0
    overdue = Reservation.objects.filter(status=Reservation.Status.OPEN, expires_at__lt=moment)
    for reservation_id in overdue.values_list("pk", flat=True):
        with transaction.atomic():
            windows = list(
                Budget.objects.filter(holds__reservation_id=reservation_id).order_by("pk").select_for_update()
            )
            reservation = Reservation.objects.select_for_update().get(pk=reservation_id)
            if reservation.status != Reservation.Status.OPEN or reservation.expires_at >= moment:
                continue  # settled, released or held anew since the listing
            Reservation.objects.filter(pk=reservation_id).update(
                status=Reservation.Status.EXPIRED, settled_usd=ZERO, closed_at=moment
            )
            for budget in windows:
                Budget.objects.filter(pk=budget.pk).update(
                    reserved_usd=minus(budget.reserved_usd, reservation.amount_usd)
                )
            released += 1
    return released
