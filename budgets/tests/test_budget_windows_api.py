"""GET /v1/budget's windows and PUT /v1/budget/windows: the caller's own user and key windows, validated."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.services import api_key_issue, team_create
from budgets.models import Budget

D = Decimal
pytestmark = pytest.mark.django_db


def _put(client: APIClient, body: object) -> object:
    return client.put("/v1/budget/windows", data=json.dumps(body), content_type="application/json")


def test_get_lists_every_window_that_applies_to_the_calling_key(alice_api, alice):
    response = _put(alice_api, {"scope": "key", "period": "daily", "limit_usd": 2})
    assert response.status_code == 200, response.content
    _put(alice_api, {"scope": "user", "period": "weekly", "limit_usd": 20})
    windows = alice_api.get("/v1/budget").json()["windows"]
    assert sorted((w["scope"], w["period"], w["limit_usd"]) for w in windows) == [
        ("key", "daily", 2),
        ("user", "monthly", None),
        ("user", "weekly", 20),
    ]
    daily = next(w for w in windows if w["period"] == "daily")
    assert set(daily) == {
        "scope", "scope_id", "name", "period", "limit_usd", "spent_usd", "reserved_usd", "remaining_usd",
        "used_percentage", "period_start", "resets_at",
    }  # fmt: skip
    assert daily["remaining_usd"] == 2 and daily["spent_usd"] == 0 and daily["used_percentage"] == 0
    assert daily["period_start"].endswith("T00:00:00Z") and daily["resets_at"] > daily["period_start"]


def test_another_key_of_the_same_user_sees_the_user_windows_but_not_the_first_keys(alice_api, alice):
    _put(alice_api, {"scope": "key", "period": "daily", "limit_usd": 2})
    _put(alice_api, {"scope": "user", "period": "daily", "limit_usd": 5})
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_issue(user=alice, name='other')[1]}")
    windows = other.get("/v1/budget").json()["windows"]
    assert sorted((w["scope"], w["period"]) for w in windows) == [("user", "daily"), ("user", "monthly")]


def test_null_removes_the_own_window_and_an_admin_limit_stays(alice_api, alice):
    _put(alice_api, {"scope": "user", "period": "daily", "limit_usd": 5})
    Budget.objects.filter(scope="user", user=alice, period="daily").update(admin_limit_usd=D(8))
    assert (
        _put(alice_api, {"scope": "user", "period": "daily", "limit_usd": 10}).status_code == 400
    )  # above admin
    _put(alice_api, {"scope": "user", "period": "daily", "limit_usd": None})
    daily = Budget.objects.get(scope="user", user=alice, period="daily")
    assert daily.own_limit_usd is None and daily.admin_limit_usd == 8  # the admin's stays
    _put(alice_api, {"scope": "key", "period": "weekly", "limit_usd": 3})
    _put(alice_api, {"scope": "key", "period": "weekly", "limit_usd": None})
    assert not Budget.objects.filter(scope="key", period="weekly").exists()  # nothing else lived there


@pytest.mark.parametrize(
    "body",
    [
        {"scope": "user", "period": "daily"},  # missing limit: never "unlimited" by accident
        {"scope": "user", "period": "daily", "limit_usd": -1},
        {"scope": "user", "period": "hourly", "limit_usd": 1},
        {"scope": "team", "period": "daily", "limit_usd": 1},  # team windows are staff's
        {"scope": "user", "period": "daily", "limit_usd": "ten"},
        ["scope", "user"],
    ],
)
def test_bad_input_is_a_400_that_changes_nothing(alice_api, alice, body):
    before = Budget.objects.count()
    response = _put(alice_api, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert Budget.objects.count() == before


def test_a_team_keys_windows_are_its_own_and_its_teams_never_its_holders(alice, bob):
    team = team_create(name="data", members=[alice, bob])
    Budget.objects.create(scope="team", team=team, period="monthly", admin_limit_usd=D(100))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_issue(user=alice, team=team)[1]}")
    windows = client.get("/v1/budget").json()["windows"]
    assert [(w["scope"], w["scope_id"], w["limit_usd"]) for w in windows] == [("team", team.pk, 100)]
