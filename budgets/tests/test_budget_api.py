"""GET /v1/budget, PUT /v1/budget/limit, POST /v1/budget/reset: shape, validation, isolation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from budgets.models import Budget
from budgets.services import budget_get_or_create

D = Decimal
pytestmark = pytest.mark.django_db


def _budget(user, **fields) -> Budget:
    budget = budget_get_or_create(user_id=user.pk)
    Budget.objects.filter(pk=budget.pk).update(**fields)
    budget.refresh_from_db()
    return budget


def _put(client, body=None, query: str = ""):
    data = None if body is None else json.dumps(body)
    return client.put(f"/v1/budget/limit{query}", data=data, content_type="application/json")


def _assert_400(response, param: str | None = "limit_usd") -> dict:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]
    return error


def test_get_answers_the_documented_shape(alice_api, alice):
    _budget(
        alice,
        own_limit_usd=D("10"),
        admin_limit_usd=D("50"),
        spent_usd=D("2.5"),
        period_start=timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0),
    )
    response = alice_api.get("/v1/budget")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "user_id",
        "spending",
        "period",
        "period_start",
        "resets_at",
        "admin_limit_usd",
        "windows",
    }
    assert body["user_id"] == alice.pk
    assert body["spending"] == {
        "total_spent_usd": 2.5,
        "spending_limit_usd": 10,
        "remaining_budget_usd": 7.5,
        "budget_used_percentage": 25,
    }
    assert body["period"] == "monthly"
    assert body["admin_limit_usd"] == 50
    start = datetime.fromisoformat(body["period_start"])
    resets = datetime.fromisoformat(body["resets_at"])
    assert body["period_start"].endswith("Z") and body["resets_at"].endswith("Z")
    assert start.day == 1 and resets.day == 1 and resets > start


def test_money_is_rendered_as_exact_json_numbers(alice_api, alice):
    _budget(alice, own_limit_usd=D("0.0001"), spent_usd=D("0.00000825"))
    response = alice_api.get("/v1/budget")
    assert b'"total_spent_usd":0.00000825' in response.content
    assert b'"remaining_budget_usd":0.00009175' in response.content
    assert b"e-" not in response.content


def test_a_new_user_has_an_unlimited_monthly_budget(alice_api):
    body = alice_api.get("/v1/budget").json()
    assert body["spending"] == {
        "total_spent_usd": 0,
        "spending_limit_usd": None,
        "remaining_budget_usd": None,
        "budget_used_percentage": None,
    }
    assert body["period"] == "monthly" and body["admin_limit_usd"] is None
    start = datetime.fromisoformat(body["period_start"])
    resets = datetime.fromisoformat(body["resets_at"])
    assert start.day == 1 and resets.day == 1 and 28 <= (resets - start).days <= 31


def test_a_lifetime_budget_never_resets(alice_api, alice):
    _budget(alice, period=Budget.Period.LIFETIME)
    body = alice_api.get("/v1/budget").json()
    assert body["period"] == "lifetime" and body["resets_at"] is None


def test_remaining_accounts_for_reservations_in_flight(alice_api, alice):
    _budget(alice, own_limit_usd=D("1"), spent_usd=D("0.25"), reserved_usd=D("0.5"))
    spending = alice_api.get("/v1/budget").json()["spending"]
    assert spending["remaining_budget_usd"] == 0.25
    assert spending["budget_used_percentage"] == 25


def test_a_request_without_a_key_gets_401_in_the_envelope(client, db):
    response = client.get("/v1/budget")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_put_sets_the_limit_from_a_json_body(alice_api, alice):
    response = _put(alice_api, {"limit_usd": 100.0})
    assert response.status_code == 200
    assert response.json()["spending"]["spending_limit_usd"] == 100
    assert Budget.objects.get(user=alice).own_limit_usd == D("100")


def test_put_keeps_every_decimal_digit_of_the_limit(alice_api, alice):
    response = _put(alice_api, {"limit_usd": 0.1234567891})
    assert response.status_code == 200
    assert Budget.objects.get(user=alice).own_limit_usd == D("0.1234567891")
    assert b'"spending_limit_usd":0.1234567891' in response.content


def test_put_accepts_the_limit_as_a_query_parameter(alice_api, alice):
    response = _put(alice_api, query="?limit_usd=12.5")
    assert response.status_code == 200
    assert Budget.objects.get(user=alice).own_limit_usd == D("12.5")


def test_put_with_null_removes_the_own_limit(alice_api, alice):
    _budget(alice, own_limit_usd=D("5"))
    response = _put(alice_api, {"limit_usd": None})
    assert response.status_code == 200
    assert response.json()["spending"]["spending_limit_usd"] is None
    assert Budget.objects.get(user=alice).own_limit_usd is None


def test_put_with_null_in_the_query_removes_the_own_limit(alice_api, alice):
    _budget(alice, own_limit_usd=D("5"))
    assert _put(alice_api, query="?limit_usd=null").status_code == 200
    assert Budget.objects.get(user=alice).own_limit_usd is None


def test_removing_the_own_limit_leaves_the_admin_limit_in_force(alice_api, alice):
    _budget(alice, own_limit_usd=D("5"), admin_limit_usd=D("20"))
    body = _put(alice_api, {"limit_usd": None}).json()
    assert body["spending"]["spending_limit_usd"] == 20 and body["admin_limit_usd"] == 20


def test_zero_is_a_valid_limit(alice_api, alice):
    response = _put(alice_api, {"limit_usd": 0})
    assert response.status_code == 200
    assert Budget.objects.get(user=alice).own_limit_usd == 0


@pytest.mark.parametrize(
    ("body", "query"),
    [
        ({}, ""),  # missing: never "unlimited" by accident
        (None, ""),  # no body at all
        ({"limit": 5}, ""),  # a misspelt field is a missing one
        (None, "?limit_usd="),  # an empty query value is not null
        (None, "?limit_usd=%20"),
        ({"limit_usd": ""}, ""),  # nor is an empty string
        ({"limit_usd": "  "}, ""),
        ({"limit_usd": -1}, ""),
        ({"limit_usd": -0.0000000001}, ""),
        (None, "?limit_usd=-5"),
        ({"limit_usd": "abc"}, ""),
        (None, "?limit_usd=abc"),
        ({"limit_usd": "NaN"}, ""),
        ({"limit_usd": "Infinity"}, ""),
        ({"limit_usd": True}, ""),
        ({"limit_usd": [5]}, ""),
        ({"limit_usd": {"usd": 5}}, ""),
        ({"limit_usd": 0.00000000001}, ""),  # finer than the ledger keeps
        ({"limit_usd": 1e12}, ""),  # more digits than the column holds
    ],
)
def test_a_bad_limit_is_400_in_the_envelope_and_changes_nothing(alice_api, alice, body, query):
    _budget(alice, own_limit_usd=D("7"))
    _assert_400(_put(alice_api, body, query))
    assert Budget.objects.get(user=alice).own_limit_usd == D("7")


def test_malformed_json_is_400_in_the_envelope_and_changes_nothing(alice_api, alice):
    _budget(alice, own_limit_usd=D("7"))
    response = alice_api.put("/v1/budget/limit", data=b'{"limit_usd": ', content_type="application/json")
    error = _assert_400(response, param=None)
    assert error["code"] == "invalid_json"
    assert Budget.objects.get(user=alice).own_limit_usd == D("7")


def test_a_json_body_that_is_not_an_object_is_400(alice_api, alice):
    _budget(alice, own_limit_usd=D("7"))
    response = alice_api.put("/v1/budget/limit", data=b"[1, 2]", content_type="application/json")
    _assert_400(response, param=None)
    assert Budget.objects.get(user=alice).own_limit_usd == D("7")


def test_a_limit_above_the_admin_limit_is_400_and_changes_nothing(alice_api, alice):
    _budget(alice, own_limit_usd=D("7"), admin_limit_usd=D("10"))
    error = _assert_400(_put(alice_api, {"limit_usd": 10.5}))
    assert error["code"] == "above_admin_limit"
    assert Budget.objects.get(user=alice).own_limit_usd == D("7")
    assert _put(alice_api, {"limit_usd": 10}).status_code == 200


def test_the_admin_limit_cannot_be_changed_through_the_api(alice_api, alice):
    _budget(alice, admin_limit_usd=D("10"))
    _put(alice_api, {"limit_usd": 5, "admin_limit_usd": 1000})
    assert Budget.objects.get(user=alice).admin_limit_usd == D("10")


def test_reset_zeroes_spending_and_keeps_the_limits(alice_api, alice):
    _budget(alice, own_limit_usd=D("10"), admin_limit_usd=D("20"), spent_usd=D("9.99"))
    response = alice_api.post("/v1/budget/reset")
    assert response.status_code == 200
    body = response.json()
    assert body["spending"]["total_spent_usd"] == 0
    assert body["spending"]["spending_limit_usd"] == 10 and body["admin_limit_usd"] == 20
    assert body["spending"]["remaining_budget_usd"] == 10
    budget = Budget.objects.get(user=alice)
    assert budget.own_limit_usd == D("10") and budget.admin_limit_usd == D("20")
    # The period's real spending stays, for the admin's limit: the reset only stops the user's own counting it.
    assert budget.spent_usd == D("9.99") and budget.reset_offset_usd == D("9.99")


def test_reset_never_lifts_the_admin_limit(alice_api, alice):
    _budget(alice, own_limit_usd=D("10"), admin_limit_usd=D("10"), spent_usd=D("7.5"))
    body = alice_api.post("/v1/budget/reset").json()
    assert body["spending"] == {
        "total_spent_usd": 0,  # what the user's own limit counts now
        "spending_limit_usd": 10,
        "remaining_budget_usd": 2.5,  # what the admin's limit still allows this period
        "budget_used_percentage": 75,
    }
    again = alice_api.get("/v1/budget").json()
    assert again["spending"] == body["spending"] and again["admin_limit_usd"] == 10


def test_reset_keeps_the_calendar_period(alice_api, alice, monkeypatch):
    now = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: now)
    _budget(alice, spent_usd=D("1"), period_start=datetime(2026, 3, 1, tzinfo=UTC))
    body = alice_api.post("/v1/budget/reset").json()
    assert body["period_start"] == "2026-03-01T00:00:00Z"
    assert body["resets_at"] == "2026-04-01T00:00:00Z"


def test_wrong_methods_are_405_in_the_envelope(alice_api):
    for response in (alice_api.post("/v1/budget"), alice_api.get("/v1/budget/reset")):
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"


def test_bob_never_sees_or_changes_alices_budget(alice_api, bob_api, alice, bob):
    _budget(alice, own_limit_usd=D("10"), spent_usd=D("4"))
    body = bob_api.get("/v1/budget").json()
    assert body["user_id"] == bob.pk
    assert body["spending"]["total_spent_usd"] == 0 and body["spending"]["spending_limit_usd"] is None

    assert _put(bob_api, {"limit_usd": 1}).status_code == 200
    assert bob_api.post("/v1/budget/reset").status_code == 200
    alices = Budget.objects.get(user=alice)
    assert alices.own_limit_usd == D("10") and alices.spent_usd == D("4")
    assert alice_api.get("/v1/budget").json()["spending"]["total_spent_usd"] == 4
