"""Staff's team window services: team_window_set (both limits per period) and team_webhook_set."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.services import api_key_issue, team_create
from budgets.models import Budget
from budgets.selectors import team_webhook
from budgets.services import budget_release, budget_reserve
from budgets.team_windows import team_webhook_set, team_window_set
from config.api_errors import BudgetExceeded, InvalidRequest

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(alice):
    return team_create(name="core", members=[alice])


def test_it_sets_both_limits_and_the_lower_one_binds_a_team_keys_reservation(alice, team):
    key = api_key_issue(user=alice, name="core-key", team=team)[0]
    window = team_window_set(
        team_id=team.pk, period="daily", own_limit_usd=Decimal(5), admin_limit_usd=Decimal(2)
    )
    assert window is not None and (window.own_limit_usd, window.admin_limit_usd) == (Decimal(5), Decimal(2))
    budget_reserve(user_id=alice.pk, amount=Decimal(2), api_key_id=key.pk)
    with pytest.raises(BudgetExceeded):
        budget_reserve(user_id=alice.pk, amount=Decimal("0.01"), api_key_id=key.pk)


def test_setting_again_replaces_both_limits(team):
    team_window_set(team_id=team.pk, period="monthly", own_limit_usd=Decimal(5), admin_limit_usd=None)
    window = team_window_set(
        team_id=team.pk, period="monthly", own_limit_usd=None, admin_limit_usd=Decimal(9)
    )
    assert window is not None and (window.own_limit_usd, window.admin_limit_usd) == (None, Decimal(9))
    assert Budget.objects.filter(team=team).count() == 1


def test_no_limits_removes_the_window_unless_money_is_held_in_it(alice, team):
    key = api_key_issue(user=alice, name="core-key", team=team)[0]
    team_window_set(team_id=team.pk, period="daily", own_limit_usd=Decimal(5), admin_limit_usd=None)
    held = budget_reserve(user_id=alice.pk, amount=Decimal(1), api_key_id=key.pk)
    kept = team_window_set(team_id=team.pk, period="daily", own_limit_usd=None, admin_limit_usd=None)
    assert kept is not None and kept.own_limit_usd is None and kept.reserved_usd == Decimal(1)
    budget_release(reservation_id=held.pk)
    assert team_window_set(team_id=team.pk, period="daily", own_limit_usd=None, admin_limit_usd=None) is None
    assert not Budget.objects.filter(team=team).exists()
    assert team_window_set(team_id=team.pk, period="weekly", own_limit_usd=None, admin_limit_usd=None) is None


@pytest.mark.parametrize(
    ("period", "own", "admin", "param"),
    [("daily", Decimal(-1), None, "own_limit_usd"), ("daily", None, Decimal(-1), "admin_limit_usd"),
     ("hourly", Decimal(1), None, "period")],
)  # fmt: skip
def test_bad_values_are_refused_and_change_nothing(team, period, own, admin, param):
    with pytest.raises(InvalidRequest) as refused:
        team_window_set(team_id=team.pk, period=period, own_limit_usd=own, admin_limit_usd=admin)
    assert refused.value.param == param
    assert not Budget.objects.exists()


def test_the_webhook_gets_a_secret_once_and_new_windows_take_it(team):
    team_window_set(team_id=team.pk, period="monthly", own_limit_usd=Decimal(100), admin_limit_usd=None)
    secret = team_webhook_set(team_id=team.pk, url="https://hooks.example.com/a")
    assert secret and len(secret) >= 32
    assert team_webhook_set(team_id=team.pk, url="https://hooks.example.com/b") is None  # keeps its secret
    team_window_set(team_id=team.pk, period="daily", own_limit_usd=Decimal(5), admin_limit_usd=None)
    assert set(Budget.objects.filter(team=team).values_list("webhook_url", "webhook_secret")) == {
        ("https://hooks.example.com/b", secret)
    }
    fresh = team_webhook_set(team_id=team.pk, url="https://hooks.example.com/b", new_secret=True)
    assert fresh and fresh != secret
    assert team_webhook(team_id=team.pk).url == "https://hooks.example.com/b"


def test_an_empty_url_turns_the_webhook_off(team):
    team_window_set(team_id=team.pk, period="monthly", own_limit_usd=Decimal(100), admin_limit_usd=None)
    team_webhook_set(team_id=team.pk, url="https://hooks.example.com/a")
    assert team_webhook_set(team_id=team.pk, url="") is None
    assert team_webhook(team_id=team.pk).url == "" and not team_webhook(team_id=team.pk).has_secret
    assert set(Budget.objects.filter(team=team).values_list("webhook_url", "webhook_secret")) == {("", "")}


def test_a_webhook_needs_a_window_to_alert_on(team):
    with pytest.raises(InvalidRequest):
        team_webhook_set(team_id=team.pk, url="https://hooks.example.com/a")
