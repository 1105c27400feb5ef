"""GET /v1/analytics/usage: totals, groupings and daily series over the caller's own requests."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.services import rollups_refresh
from analytics.tests.factories import GatewayRequestFactory

pytestmark = pytest.mark.django_db

URL = "/v1/analytics/usage"


def test_it_answers_with_the_contract_field_names(alice, alice_api):
    GatewayRequestFactory(user=alice)
    body = alice_api.get(URL).json()
    for name in (
        "total_requests",
        "total_cost_usd",
        "avg_latency_ms",
        "p95_latency_ms",
        "success_rate",
        "cache_hits",
        "cache_savings_usd",
        "by_provider",
        "by_model",
        "daily_stats",
    ):
        assert name in body
    assert set(body["by_provider"][0]) == {"provider", "requests", "cost_usd"}
    assert set(body["by_model"][0]) == {"model", "requests", "cost_usd"}
    assert set(body["daily_stats"][0]) == {"date", "requests", "cost_usd"}


def test_money_is_a_plain_json_number_without_float_noise(alice, alice_api):
    GatewayRequestFactory(user=alice)
    response = alice_api.get(URL)
    assert b'"total_cost_usd":0.00000825' in response.content
    assert response.json()["total_cost_usd"] == pytest.approx(0.00000825)


def test_it_sums_requests_cost_success_rate_and_cache(alice, alice_api):
    GatewayRequestFactory(user=alice, total_cost_usd=Decimal("0.5"), latency_ms=100)
    GatewayRequestFactory(user=alice, total_cost_usd=Decimal("0.25"), latency_ms=300)
    GatewayRequestFactory(user=alice, status="error", total_cost_usd=Decimal(0), latency_ms=200)
    GatewayRequestFactory(
        user=alice, cached=True, total_cost_usd=Decimal(0), cache_savings_usd=Decimal("0.1"), latency_ms=4
    )
    body = alice_api.get(URL).json()
    assert body["total_requests"] == 4
    assert body["total_cost_usd"] == 0.75
    assert body["success_rate"] == 0.75
    assert body["cache_hits"] == 1
    assert body["cache_savings_usd"] == 0.1
    assert body["avg_latency_ms"] == 151
    assert 280 <= body["p95_latency_ms"] <= 320


def test_by_model_is_sorted_by_cost_descending(alice, alice_api):
    GatewayRequestFactory(user=alice, model="gpt-4o-mini", total_cost_usd=Decimal("0.01"))
    GatewayRequestFactory(
        user=alice, model="claude-sonnet-4-5-20250929", provider="anthropic", total_cost_usd=Decimal("0.3")
    )
    GatewayRequestFactory(user=alice, model="gpt-4o", total_cost_usd=Decimal("0.2"))
    body = alice_api.get(URL).json()
    assert [m["model"] for m in body["by_model"]] == ["claude-sonnet-4-5-20250929", "gpt-4o", "gpt-4o-mini"]
    assert {p["provider"]: p["requests"] for p in body["by_provider"]} == {"anthropic": 1, "openai": 2}


def test_daily_stats_cover_every_day_of_the_period_in_ascending_order(alice, alice_api):
    now = timezone.now()
    GatewayRequestFactory(user=alice, created_at=now - timedelta(days=2))
    GatewayRequestFactory(user=alice, created_at=now)
    GatewayRequestFactory(user=alice, created_at=now)
    body = alice_api.get(URL, {"days": 7}).json()
    dates = [d["date"] for d in body["daily_stats"]]
    assert len(dates) == 7 and dates == sorted(dates)
    assert dates[-1] == now.date().isoformat()
    by_date = {d["date"]: d["requests"] for d in body["daily_stats"]}
    assert by_date[(now - timedelta(days=2)).date().isoformat()] == 1
    assert by_date[now.date().isoformat()] == 2


def test_requests_older_than_the_period_are_left_out(alice, alice_api):
    GatewayRequestFactory(user=alice, created_at=timezone.now() - timedelta(days=10))
    GatewayRequestFactory(user=alice)
    assert alice_api.get(URL, {"days": 7}).json()["total_requests"] == 1
    assert alice_api.get(URL, {"days": 30}).json()["total_requests"] == 2


def test_it_counts_only_the_callers_requests(alice, bob, alice_api, bob_api):
    GatewayRequestFactory(user=alice)
    GatewayRequestFactory(user=bob, total_cost_usd=Decimal(5))
    rollups_refresh()
    assert alice_api.get(URL).json()["total_requests"] == 1
    assert bob_api.get(URL).json()["total_cost_usd"] == 5


def test_a_user_with_no_requests_gets_zeros_not_an_error(alice_api):
    body = alice_api.get(URL).json()
    assert body["total_requests"] == 0
    assert body["total_cost_usd"] == 0
    assert body["p95_latency_ms"] is None
    assert body["by_model"] == []


@pytest.mark.parametrize("days", ["0", "366", "-1", "abc", "1.5"])
def test_days_out_of_range_or_not_a_number_is_a_400_envelope(alice_api, days):
    response = alice_api.get(URL, {"days": days})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["param"] == "days"


def test_it_needs_an_api_key(db):
    from rest_framework.test import APIClient

    response = APIClient().get(URL)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_by_door_breaks_requests_and_cost_down_cost_descending(alice, alice_api):
    GatewayRequestFactory(user=alice, total_cost_usd=Decimal("0.01"))
    GatewayRequestFactory(user=alice, door="messages", total_cost_usd=Decimal("0.2"))
    GatewayRequestFactory(user=alice, door="messages", total_cost_usd=Decimal("0.1"))
    GatewayRequestFactory(user=alice, door="responses", total_cost_usd=Decimal("0.05"))
    body = alice_api.get(URL).json()
    assert body["by_door"] == [
        {"door": "messages", "requests": 2, "cost_usd": 0.3},
        {"door": "responses", "requests": 1, "cost_usd": 0.05},
        {"door": "chat", "requests": 1, "cost_usd": 0.01},
    ]
    assert sum(d["requests"] for d in body["by_door"]) == body["total_requests"] == 4


def test_a_door_filter_counts_only_that_doors_requests_everywhere(alice, alice_api):
    now = timezone.now()
    GatewayRequestFactory(user=alice, total_cost_usd=Decimal("1"), latency_ms=5000)
    GatewayRequestFactory(
        user=alice, model="gpt-4o", total_cost_usd=Decimal("2"), created_at=now - timedelta(days=1)
    )
    GatewayRequestFactory(
        user=alice, door="messages", model="claude-sonnet-4-5-20250929", provider="anthropic",
        total_cost_usd=Decimal("0.3"), latency_ms=100, status="error",
    )  # fmt: skip
    GatewayRequestFactory(
        user=alice,
        door="messages",
        total_cost_usd=Decimal("0.1"),
        latency_ms=100,
        created_at=now - timedelta(days=2),
    )
    body = alice_api.get(URL, {"door": "messages", "days": 7}).json()
    assert body["total_requests"] == 2
    assert body["total_cost_usd"] == 0.4
    assert body["success_rate"] == 0.5
    assert body["avg_latency_ms"] == 100
    assert 90 <= body["p95_latency_ms"] <= 110
    assert {p["provider"]: p["requests"] for p in body["by_provider"]} == {"anthropic": 1, "openai": 1}
    assert [m["model"] for m in body["by_model"]] == ["claude-sonnet-4-5-20250929", "gpt-4o-mini"]
    assert body["by_door"] == [{"door": "messages", "requests": 2, "cost_usd": 0.4}]
    daily = {d["date"]: d["requests"] for d in body["daily_stats"]}
    assert sum(daily.values()) == 2
    assert daily[(now - timedelta(days=1)).date().isoformat()] == 0
    assert alice_api.get(URL, {"door": "embeddings"}).json()["total_requests"] == 0
    assert alice_api.get(URL).json()["total_requests"] == 4


@pytest.mark.parametrize("door", ["anthropic", "Chat", "0"])
def test_a_door_that_does_not_exist_is_a_400_naming_door(alice_api, door):
    response = alice_api.get(URL, {"door": door})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["param"] == "door"


def test_the_openapi_schema_lists_the_door_parameter_and_the_by_door_breakdown(client):
    schema = client.get("/openapi.json").json()
    operation = schema["paths"][URL]["get"]
    door = next(p for p in operation["parameters"] if p["name"] == "door")
    assert sorted(door["schema"]["enum"]) == ["chat", "embeddings", "messages", "responses"]
    summary = schema["components"]["schemas"]["AnalyticsUsageSummary"]
    assert "by_door" in summary["properties"] and "by_door" in summary["required"]
