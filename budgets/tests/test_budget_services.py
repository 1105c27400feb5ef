"""budgets.services (reserve, settle, release, expire, the roll, idempotency keys) and budgets.limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from budgets.limits import budget_limit_set, budget_reset, budget_state
from budgets.models import Budget, Reservation
from budgets.services import (
    budget_charge,
    budget_get_or_create,
    budget_release,
    budget_reserve,
    budget_settle,
    reservations_expire,
)
from config.api_errors import BudgetExceeded, InvalidRequest

D = Decimal
pytestmark = pytest.mark.django_db


def _budget(user, **fields) -> Budget:
    budget = budget_get_or_create(user_id=user.pk)
    Budget.objects.filter(pk=budget.pk).update(**fields)
    budget.refresh_from_db()
    return budget


def test_a_reservation_holds_its_amount_against_the_remaining_budget(alice):
    _budget(alice, own_limit_usd=D("1.00"))
    reservation = budget_reserve(user_id=alice.pk, amount=D("0.30"), request_id="req_1")
    state = budget_state(user_id=alice.pk)
    assert reservation.status == Reservation.Status.OPEN
    assert reservation.amount_usd == D("0.30") and reservation.request_id == "req_1"
    assert state.reserved == D("0.30") and state.spent == 0
    assert state.remaining == D("0.70")


def test_settling_charges_the_actual_cost_and_frees_the_rest_of_the_hold(alice):
    _budget(alice, own_limit_usd=D("1.00"))
    reservation = budget_reserve(user_id=alice.pk, amount=D("0.30"))
    budget_settle(reservation_id=reservation.pk, actual_cost=D("0.1234567891"))
    state = budget_state(user_id=alice.pk)
    assert state.spent == D("0.1234567891") and state.reserved == 0
    assert state.remaining == D("0.8765432109")
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.SETTLED and reservation.settled_usd == D("0.1234567891")


def test_settling_twice_charges_once(alice):
    reservation = budget_reserve(user_id=alice.pk, amount=D("0.30"))
    budget_settle(reservation_id=reservation.pk, actual_cost=D("0.10"))
    budget_settle(reservation_id=reservation.pk, actual_cost=D("0.10"))
    assert budget_state(user_id=alice.pk).spent == D("0.10")


def test_releasing_frees_the_whole_hold_and_charges_nothing(alice):
    _budget(alice, own_limit_usd=D("1.00"))
    reservation = budget_reserve(user_id=alice.pk, amount=D("0.30"))
    budget_release(reservation_id=reservation.pk)
    budget_release(reservation_id=reservation.pk)  # a second release is a no-op
    state = budget_state(user_id=alice.pk)
    assert state.spent == 0 and state.reserved == 0 and state.remaining == D("1.00")
    assert Reservation.objects.get(pk=reservation.pk).status == Reservation.Status.RELEASED


def test_a_release_after_settling_changes_nothing(alice):
    reservation = budget_reserve(user_id=alice.pk, amount=D("0.30"))
    budget_settle(reservation_id=reservation.pk, actual_cost=D("0.20"))
    budget_release(reservation_id=reservation.pk)
    state = budget_state(user_id=alice.pk)
    assert state.spent == D("0.20") and state.reserved == 0


def test_a_reservation_that_does_not_fit_is_refused_with_the_402_details(alice):
    _budget(alice, own_limit_usd=D("1.00"), spent_usd=D("0.60"))
    budget_reserve(user_id=alice.pk, amount=D("0.30"))
    with pytest.raises(BudgetExceeded) as refused:
        budget_reserve(user_id=alice.pk, amount=D("0.25"))
    assert refused.value.status == 402
    detail = refused.value.body()["error"]
    assert detail["type"] == "budget_exceeded" and detail["code"] == "budget_exceeded"
    assert detail["reason"] == "limit_would_be_exceeded"
    assert detail["total_spent_usd"] == D("0.60")
    assert detail["spending_limit_usd"] == D("1.00")
    assert detail["remaining_budget_usd"] == D("0.10")
    assert detail["estimated_cost_usd"] == D("0.25")
    assert detail["would_exceed_by_usd"] == D("0.15")
    assert budget_state(user_id=alice.pk).reserved == D("0.30")  # the refusal held nothing


def test_a_reservation_exactly_filling_the_budget_fits(alice):
    _budget(alice, own_limit_usd=D("1.00"), spent_usd=D("0.70"))
    budget_reserve(user_id=alice.pk, amount=D("0.30"))
    assert budget_state(user_id=alice.pk).remaining == 0
    with pytest.raises(BudgetExceeded):
        budget_reserve(user_id=alice.pk, amount=D("0.0000000001"))


def test_without_any_limit_everything_fits(alice):
    budget_reserve(user_id=alice.pk, amount=D("1000000"))
    state = budget_state(user_id=alice.pk)
    assert state.limit is None and state.remaining is None and state.used_percentage is None


def test_the_admin_limit_wins_when_it_is_lower_than_the_users_own(alice):
    _budget(alice, own_limit_usd=D("10.00"), admin_limit_usd=D("2.00"))
    assert budget_state(user_id=alice.pk).limit == D("2.00")
    budget_reserve(user_id=alice.pk, amount=D("1.50"))
    with pytest.raises(BudgetExceeded) as refused:
        budget_reserve(user_id=alice.pk, amount=D("1.00"))
    assert refused.value.extra["spending_limit_usd"] == D("2.00")


def test_the_users_own_limit_wins_when_it_is_lower_than_the_admins(alice):
    _budget(alice, own_limit_usd=D("1.00"), admin_limit_usd=D("5.00"))
    with pytest.raises(BudgetExceeded):
        budget_reserve(user_id=alice.pk, amount=D("1.50"))


def test_a_negative_reservation_is_a_programming_error(alice):
    with pytest.raises(ValueError):
        budget_reserve(user_id=alice.pk, amount=D("-0.01"))


def test_an_idempotency_key_reserves_once(alice):
    _budget(alice, own_limit_usd=D("1.00"))
    first = budget_reserve(user_id=alice.pk, amount=D("0.40"), idempotency_key="batch_1:0:gpt-4o-mini")
    again = budget_reserve(user_id=alice.pk, amount=D("0.40"), idempotency_key="batch_1:0:gpt-4o-mini")
    assert again.pk == first.pk
    assert budget_state(user_id=alice.pk).reserved == D("0.40")
    assert Reservation.objects.count() == 1


def test_a_settled_idempotency_key_is_not_charged_again(alice):
    first = budget_reserve(user_id=alice.pk, amount=D("0.40"), idempotency_key="item-7")
    budget_settle(reservation_id=first.pk, actual_cost=D("0.10"))
    again = budget_reserve(user_id=alice.pk, amount=D("0.40"), idempotency_key="item-7")
    budget_settle(reservation_id=again.pk, actual_cost=D("0.10"))
    state = budget_state(user_id=alice.pk)
    assert again.pk == first.pk and state.spent == D("0.10") and state.reserved == 0


def test_a_released_idempotency_key_is_held_anew_when_the_item_comes_again(alice):
    _budget(alice, own_limit_usd=D("1.00"))
    first = budget_reserve(user_id=alice.pk, amount=D("0.40"), idempotency_key="item-8")
    budget_release(reservation_id=first.pk)
    again = budget_reserve(user_id=alice.pk, amount=D("0.50"), idempotency_key="item-8", request_id="req_2")
    assert again.pk == first.pk and again.status == Reservation.Status.OPEN
    assert again.amount_usd == D("0.50") and again.request_id == "req_2"
    assert budget_state(user_id=alice.pk).reserved == D("0.50")


def test_reservations_past_their_expiry_are_released_and_live_ones_kept(alice):
    _budget(alice, own_limit_usd=D("1.00"))
    dead = budget_reserve(user_id=alice.pk, amount=D("0.30"))
    live = budget_reserve(user_id=alice.pk, amount=D("0.20"))
    Reservation.objects.filter(pk=dead.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert reservations_expire() == 1
    assert reservations_expire() == 0
    dead.refresh_from_db()
    live.refresh_from_db()
    assert dead.status == Reservation.Status.EXPIRED and dead.settled_usd == 0
    assert live.status == Reservation.Status.OPEN
    state = budget_state(user_id=alice.pk)
    assert state.reserved == D("0.20") and state.spent == 0


def test_settling_an_expired_reservation_still_charges_what_was_spent(alice):
    dead = budget_reserve(user_id=alice.pk, amount=D("0.30"))
    Reservation.objects.filter(pk=dead.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    reservations_expire()
    budget_settle(reservation_id=dead.pk, actual_cost=D("0.05"))
    state = budget_state(user_id=alice.pk)
    assert state.spent == D("0.05") and state.reserved == 0  # the hold was not freed twice


def test_a_charge_without_reservation_adds_spending(alice):
    budget_charge(user_id=alice.pk, amount=D("0.0000000123"))
    assert budget_state(user_id=alice.pk).spent == D("0.0000000123")


def test_a_monthly_budget_starts_over_on_the_first_of_the_month(alice, monkeypatch):
    may = datetime(2026, 5, 31, 23, 59, 59, tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: may)
    _budget(
        alice, own_limit_usd=D("1.00"), spent_usd=D("0.90"), period_start=datetime(2026, 5, 1, tzinfo=UTC)
    )
    assert budget_state(user_id=alice.pk).spent == D("0.90")
    assert budget_state(user_id=alice.pk).resets_at == datetime(2026, 6, 1, tzinfo=UTC)

    june = datetime(2026, 6, 1, 0, 0, 1, tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: june)
    budget_reserve(user_id=alice.pk, amount=D("0.50"))
    state = budget_state(user_id=alice.pk)
    assert state.spent == 0 and state.reserved == D("0.50")
    assert state.period_start == datetime(2026, 6, 1, tzinfo=UTC)
    assert state.resets_at == datetime(2026, 7, 1, tzinfo=UTC)
    assert state.limit == D("1.00")  # the limit carries over


def test_december_resets_on_the_first_of_january(alice, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 12, 15, tzinfo=UTC))
    _budget(alice, period_start=datetime(2026, 12, 1, tzinfo=UTC))
    assert budget_state(user_id=alice.pk).resets_at == datetime(2027, 1, 1, tzinfo=UTC)


def test_a_lifetime_budget_never_starts_over(alice):
    _budget(
        alice,
        period=Budget.Period.LIFETIME,
        spent_usd=D("0.90"),
        period_start=timezone.now() - timedelta(days=400),
    )
    state = budget_state(user_id=alice.pk)
    assert state.spent == D("0.90") and state.resets_at is None and state.period == "lifetime"


def test_setting_a_limit_and_removing_it(alice):
    assert budget_limit_set(user_id=alice.pk, limit_usd=D("5")).limit == D("5")
    assert budget_limit_set(user_id=alice.pk, limit_usd=None).limit is None


def test_a_negative_limit_is_refused(alice):
    with pytest.raises(InvalidRequest) as refused:
        budget_limit_set(user_id=alice.pk, limit_usd=D("-1"))
    assert refused.value.param == "limit_usd"


def test_a_user_cannot_raise_their_limit_above_the_admins(alice):
    _budget(alice, admin_limit_usd=D("10"))
    with pytest.raises(InvalidRequest) as refused:
        budget_limit_set(user_id=alice.pk, limit_usd=D("10.01"))
    assert refused.value.code == "above_admin_limit"
    assert budget_limit_set(user_id=alice.pk, limit_usd=D("10")).limit == D("10")


def test_reset_zeroes_spending_and_keeps_limits_and_holds(alice):
    _budget(alice, own_limit_usd=D("3"), admin_limit_usd=D("5"), spent_usd=D("2.5"))
    budget_reserve(user_id=alice.pk, amount=D("0.25"))
    state = budget_reset(user_id=alice.pk)
    assert state.spent == 0 and state.reserved == D("0.25")
    assert state.own_limit == D("3") and state.admin_limit == D("5")


def test_used_percentage_is_spending_over_the_limit(alice):
    _budget(alice, own_limit_usd=D("3"), spent_usd=D("1"))
    assert budget_state(user_id=alice.pk).used_percentage == D("33.33")
    _budget(alice, own_limit_usd=D("0"), spent_usd=D("0"))
    assert budget_state(user_id=alice.pk).used_percentage == D("100")


def test_budgets_are_per_user(alice, bob):
    _budget(alice, own_limit_usd=D("1.00"))
    budget_reserve(user_id=alice.pk, amount=D("1.00"))
    budget_reserve(user_id=bob.pk, amount=D("1.00"))
    assert budget_state(user_id=bob.pk).reserved == D("1.00")
    assert budget_state(user_id=alice.pk).remaining == 0
