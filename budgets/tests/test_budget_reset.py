"""budget_reset: it frees the user's own limit and never an admin's, in the services and in the hot path's SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from budgets.hotpath import RESERVE_SQL
from budgets.limits import budget_reset, budget_state
from budgets.models import Budget, Reservation
from budgets.services import budget_charge, budget_get_or_create, budget_reserve, budget_settle
from config.api_errors import BudgetExceeded

D = Decimal
pytestmark = pytest.mark.django_db


def _budget(user, **fields) -> Budget:
    budget = budget_get_or_create(user_id=user.pk)
    Budget.objects.filter(pk=budget.pk).update(**fields)
    budget.refresh_from_db()
    return budget


def _spend(user, amount: Decimal) -> None:
    budget_settle(reservation_id=budget_reserve(user_id=user.pk, amount=amount).pk, actual_cost=amount)


def _sql_holds(user, amount: Decimal) -> bool:
    """Whether the gateway's one-statement reserve (budgets.hotpath.RESERVE_SQL) grants the hold."""
    params = {"amount": amount, "user_id": user.pk, "key_id": None, "request_id": "req_sql", "ttl": 60}
    with connection.cursor() as cursor:
        cursor.execute(RESERVE_SQL, params)
        return bool(cursor.fetchall())


def test_spending_reset_and_spending_again_never_passes_the_admin_limit(alice):
    _budget(alice, admin_limit_usd=D("1.00"))
    refused = 0
    for _ in range(10):  # the reproduction: spend, reset, repeat; today's ceiling was none at all
        try:
            _spend(alice, D("0.30"))
        except BudgetExceeded:
            refused += 1
        budget_reset(user_id=alice.pk)
    budget = Budget.objects.get(user=alice)
    assert budget.spent_usd == D("0.90") and refused == 7
    assert budget.spent_usd <= budget.admin_limit_usd


def test_after_a_reset_the_402_names_the_admin_limit_and_the_periods_real_spend(alice):
    _budget(alice, own_limit_usd=D("1.00"), admin_limit_usd=D("1.00"))
    _spend(alice, D("0.80"))
    budget_reset(user_id=alice.pk)
    with pytest.raises(BudgetExceeded) as refused:
        budget_reserve(user_id=alice.pk, amount=D("0.30"))
    extra = refused.value.extra
    assert extra["spending_limit_usd"] == D("1.00") and extra["total_spent_usd"] == D("0.80")
    assert extra["remaining_budget_usd"] == D("0.20") and extra["would_exceed_by_usd"] == D("0.10")
    assert budget_reserve(user_id=alice.pk, amount=D("0.20")).status == Reservation.Status.OPEN


def test_a_reset_still_frees_the_users_own_limit(alice):
    _budget(alice, own_limit_usd=D("1.00"), admin_limit_usd=D("5.00"))
    _spend(alice, D("0.90"))
    with pytest.raises(BudgetExceeded):
        budget_reserve(user_id=alice.pk, amount=D("0.20"))

    state = budget_reset(user_id=alice.pk)

    assert state.spent == 0 and state.period_spent == D("0.90") and state.remaining == D("1.00")
    _spend(alice, D("1.00"))
    state = budget_state(user_id=alice.pk)
    assert state.spent == D("1.00") and state.period_spent == D("1.90") and state.remaining == 0


def test_the_state_after_a_reset_counts_each_limit_against_its_own_spending(alice):
    _budget(alice, own_limit_usd=D("10"), admin_limit_usd=D("20"), spent_usd=D("15"))
    budget_reset(user_id=alice.pk)
    budget_reserve(user_id=alice.pk, amount=D("1"))
    state = budget_state(user_id=alice.pk)
    assert state.spent == 0 and state.reserved == D("1") and state.limit == D("10")
    assert state.remaining == D("4")  # the admin's 20 less the period's 15 and the 1 held
    assert state.used_percentage == D("75.00")  # the most used limit: 15 of the admin's 20


def test_spending_without_a_reservation_counts_for_both_limits(alice):
    _budget(alice, own_limit_usd=D("1.00"), admin_limit_usd=D("1.50"))
    _spend(alice, D("1.00"))
    budget_reset(user_id=alice.pk)
    budget_charge(user_id=alice.pk, amount=D("0.25"))
    state = budget_state(user_id=alice.pk)
    assert state.spent == D("0.25") and state.period_spent == D("1.25") and state.remaining == D("0.25")


def test_a_reset_keeps_the_calendar_period(alice, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 3, 17, 12, 0, tzinfo=UTC))
    _budget(alice, spent_usd=D("1"), period_start=datetime(2026, 3, 1, tzinfo=UTC))
    state = budget_reset(user_id=alice.pk)
    assert state.period_start == datetime(2026, 3, 1, tzinfo=UTC)
    assert state.resets_at == datetime(2026, 4, 1, tzinfo=UTC)


def test_the_new_month_zeroes_what_both_limits_count(alice, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 5, 20, tzinfo=UTC))
    _budget(
        alice,
        own_limit_usd=D("1.00"),
        admin_limit_usd=D("1.00"),
        period_start=datetime(2026, 5, 1, tzinfo=UTC),
    )
    _spend(alice, D("0.70"))
    budget_reset(user_id=alice.pk)
    _spend(alice, D("0.30"))
    with pytest.raises(BudgetExceeded):
        budget_reserve(user_id=alice.pk, amount=D("0.01"))

    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 6, 1, 0, 0, 1, tzinfo=UTC))
    _spend(alice, D("1.00"))  # a whole admin limit again: the new month counts from zero

    budget = Budget.objects.get(user=alice)
    assert budget.period_start == datetime(2026, 6, 1, tzinfo=UTC)
    assert budget.spent_usd == D("1.00") and budget.reset_offset_usd == 0
    state = budget_state(user_id=alice.pk)
    assert state.spent == D("1.00") and state.period_spent == D("1.00") and state.remaining == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the hot path's SQL is PostgreSQL's")
def test_the_hot_paths_reserve_counts_the_admin_limit_against_the_periods_real_spend(alice):
    _budget(alice, admin_limit_usd=D("1.00"))
    _spend(alice, D("0.80"))
    budget_reset(user_id=alice.pk)
    assert not _sql_holds(alice, D("0.30"))
    assert _sql_holds(alice, D("0.20"))
    assert Budget.objects.get(user=alice).reserved_usd == D("0.20")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the hot path's SQL is PostgreSQL's")
def test_the_hot_paths_reserve_counts_the_own_limit_from_the_last_reset(alice):
    _budget(alice, own_limit_usd=D("1.00"), admin_limit_usd=D("5.00"))
    _spend(alice, D("0.90"))
    assert not _sql_holds(alice, D("0.20"))
    budget_reset(user_id=alice.pk)
    assert not _sql_holds(alice, D("1.01"))
    assert _sql_holds(alice, D("1.00"))
