"""rollups_refresh: daily rollups plus the live tail answer exactly what the log says."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from analytics.models import DailyLatency, DailyUsage, JobState
from analytics.selectors import latency_bucket, percentile_from_histogram, usage_summary
from analytics.services import rollups_refresh
from analytics.tasks import rollups_refresh_task
from analytics.tests.factories import GatewayRequestFactory
from routing.models import GatewayRequest

pytestmark = pytest.mark.django_db


def _spread(user, days=40):
    now = timezone.now()
    for day in range(days):
        for index in range(day % 3 + 1):
            GatewayRequestFactory(
                user=user,
                created_at=now - timedelta(days=day, minutes=index),
                total_cost_usd=Decimal("0.0001") * (day + index + 1),
                latency_ms=100 + 10 * day + index,
                model=["gpt-4o-mini", "gpt-4o"][index % 2],
                cached=index == 2,
                status="error" if day % 7 == 0 else "success",
            )


def test_it_rolls_up_the_log_up_to_a_watermark_a_request_deadline_ago(alice, settings):
    settings.ROUTER_DEADLINE_S = 120
    _spread(alice)
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    # Today and settled: half an hour ago, or just after midnight in the day's first half hour.
    GatewayRequestFactory(user=alice, created_at=max(timezone.now() - timedelta(minutes=30), midnight))
    result = rollups_refresh()
    now = timezone.now()
    assert now - timedelta(minutes=4) < result.rolled_until <= now - timedelta(minutes=3)
    assert JobState.objects.get(name=JobState.ROLLUPS).rolled_until == result.rolled_until
    settled = GatewayRequest.objects.filter(created_at__lt=result.rolled_until)
    rolled = DailyUsage.objects.aggregate(n=Sum("requests"), c=Sum("cost_usd"))
    assert rolled["n"] == settled.count() < GatewayRequest.objects.count()
    assert rolled["c"] == settled.aggregate(c=Sum("total_cost_usd"))["c"]
    assert DailyLatency.objects.aggregate(n=Sum("count"))["n"] == rolled["n"]
    if result.rolled_until >= midnight:  # in the day's first minutes nothing of today is settled yet
        assert DailyUsage.objects.filter(date=now.date()).exists()  # today's rows so far


@pytest.mark.parametrize("refresh", [False, True])
def test_usage_from_rollups_plus_live_today_equals_the_sum_over_the_list(alice, alice_api, refresh):
    _spread(alice)
    GatewayRequestFactory(user=alice, created_at=timezone.now() - timedelta(hours=1))  # today, rolled up
    if refresh:
        rollups_refresh()
    GatewayRequestFactory(user=alice, total_cost_usd=Decimal("0.42"))  # today, after the refresh
    for days in (1, 7, 30, 365):
        usage = alice_api.get("/v1/analytics/usage", {"days": days}).json()
        start = (timezone.now() - timedelta(days=days - 1)).date().isoformat()
        listed = alice_api.get("/v1/analytics/requests", {"start_date": start, "per_page": 100}).json()
        assert usage["total_requests"] == listed["total"]
        assert Decimal(str(usage["total_cost_usd"])) == sum(
            Decimal(str(r["total_cost_usd"])) for r in listed["requests"]
        )
        assert sum(d["requests"] for d in usage["daily_stats"]) == listed["total"]
        assert sum(m["requests"] for m in usage["by_model"]) == listed["total"]


def test_rollups_and_live_aggregation_give_identical_summaries(alice):
    _spread(alice)
    live = usage_summary(user_id=alice.pk, days=30)
    rollups_refresh()
    rolled = usage_summary(user_id=alice.pk, days=30)
    assert rolled.totals == live.totals
    assert rolled.daily == live.daily
    assert rolled.p95_latency_ms == live.p95_latency_ms
    assert [(g.name, g.requests, g.cost_usd) for g in rolled.by_model] == [
        (g.name, g.requests, g.cost_usd) for g in live.by_model
    ]


def test_a_row_logged_late_for_yesterday_is_picked_up_by_the_next_refresh(alice):
    rollups_refresh()
    GatewayRequestFactory(
        user=alice, created_at=timezone.now() - timedelta(days=1), total_cost_usd=Decimal(2)
    )
    rollups_refresh()
    assert DailyUsage.objects.get(user=alice).cost_usd == Decimal(2)


def test_refresh_is_idempotent(alice):
    _spread(alice, days=5)
    rollups_refresh()
    first = list(
        DailyUsage.objects.order_by("date", "model").values_list("date", "model", "requests", "cost_usd")
    )
    rollups_refresh()
    rollups_refresh(since=timezone.now().date() - timedelta(days=30))
    again = list(
        DailyUsage.objects.order_by("date", "model").values_list("date", "model", "requests", "cost_usd")
    )
    assert first == again


def test_the_celery_task_runs_the_refresh(alice):
    _spread(alice, days=3)
    result = rollups_refresh_task.apply().get()
    assert result["rolled_until"] == JobState.objects.get(name=JobState.ROLLUPS).rolled_until.isoformat()
    assert DailyUsage.objects.exists()


def test_p95_from_the_histogram_is_within_five_percent():
    latencies = list(range(1, 2001))
    histogram: dict[int, int] = {}
    for value in latencies:
        histogram[latency_bucket(value)] = histogram.get(latency_bucket(value), 0) + 1
    assert percentile_from_histogram(histogram, 0.95) == pytest.approx(1900, rel=0.05)
    assert percentile_from_histogram({}, 0.95) is None


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"model": "gpt-4o"},
        {"provider": "openai"},
        {"status": "error"},
        {"status": "success", "model": "gpt-4o-mini"},
        {"cached": "true"},
        {"cached": "false"},
        {"status": "error", "cached": "false"},
        {"start_date": "DAYS_AGO_10"},
        {"end_date": "DAYS_AGO_3", "model": "gpt-4o"},
        {"start_date": "DAYS_AGO_20", "end_date": "DAYS_AGO_0"},
        {"search": "nothing matches"},
    ],
)
def test_list_totals_from_rollups_match_counting_the_rows(alice, bob, alice_api, params):
    _spread(alice)
    _spread(bob, days=5)
    rollups_refresh()
    GatewayRequestFactory(user=alice, model="gpt-4o", status="error")  # today, live
    today = timezone.now().date()
    query = {
        name: (today - timedelta(days=int(value.rsplit("_", 1)[1]))).isoformat()
        if value.startswith("DAYS_AGO")
        else value
        for name, value in params.items()
    }
    body = alice_api.get("/v1/analytics/requests", {**query, "per_page": 100}).json()
    rows = GatewayRequest.objects.filter(user=alice)
    if "model" in query:
        rows = rows.filter(model=query["model"])
    if "provider" in query:
        rows = rows.filter(provider=query["provider"])
    if "status" in query:
        rows = rows.filter(status=query["status"])
    if "cached" in query:
        rows = rows.filter(cached=query["cached"] == "true")
    if "start_date" in query:
        rows = rows.filter(created_at__date__gte=query["start_date"])
    if "end_date" in query:
        rows = rows.filter(created_at__date__lte=query["end_date"])
    if "search" in query:
        rows = rows.none()
    assert body["total"] == rows.count()
    assert body["total_pages"] == -(-rows.count() // 100)
    if rows.count() <= 100:
        assert len(body["requests"]) == rows.count()


DOORS = ("chat", "messages", "responses", "embeddings")


def _spread_doors(user, days=10):
    """Rows of more doors each day (day k: the first k % 4 + 1 doors); a door's cost is its own, so a mix-up
    shows in the sums. Each day's rows sit halfway between that day's midnight and the time of day now, so
    none crosses into another UTC day."""
    now = timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    anchor = midnight + (now - midnight) / 2
    for day in range(days):
        for index, door in enumerate(DOORS[: day % 4 + 1]):
            GatewayRequestFactory(
                user=user,
                door=door,
                created_at=anchor - timedelta(days=day, milliseconds=index),
                total_cost_usd=Decimal("0.001") * (index + 1) + Decimal("0.0001") * day,
                latency_ms=50 * (index + 1) + day,
                model=["gpt-4o-mini", "gpt-4o"][day % 2],
            )


def test_the_refresh_groups_the_rollups_by_door(alice):
    _spread_doors(alice)
    result = rollups_refresh()
    for door in DOORS:
        logged = GatewayRequest.objects.filter(door=door, created_at__lt=result.rolled_until)
        rolled = DailyUsage.objects.filter(door=door).aggregate(n=Sum("requests"), c=Sum("cost_usd"))
        assert rolled["n"] == logged.count() > 0
        assert rolled["c"] == logged.aggregate(c=Sum("total_cost_usd"))["c"]
        assert DailyLatency.objects.filter(door=door).aggregate(n=Sum("count"))["n"] == logged.count()
    today = timezone.now().date()
    two_days_ago = DailyUsage.objects.filter(date=today - timedelta(days=2)).values_list("door", flat=True)
    assert sorted(two_days_ago) == ["chat", "messages", "responses"]
    three_days_ago = DailyUsage.objects.filter(date=today - timedelta(days=3)).values_list("door", flat=True)
    assert sorted(three_days_ago) == sorted(DOORS)


def test_by_door_sums_the_rollup_days_and_todays_live_tail(alice, alice_api):
    _spread_doors(alice)
    rollups_refresh()
    GatewayRequestFactory(
        user=alice, door="messages", total_cost_usd=Decimal("0.5")
    )  # live, after the refresh
    GatewayRequestFactory(user=alice, door="embeddings", total_cost_usd=Decimal("0.25"))
    body = alice_api.get("/v1/analytics/usage", {"days": 30}).json()
    expected = []
    for door in DOORS:
        logged = GatewayRequest.objects.filter(user=alice, door=door)
        expected.append((door, logged.count(), logged.aggregate(c=Sum("total_cost_usd"))["c"]))
    expected.sort(key=lambda row: -row[2])
    assert [(d["door"], d["requests"], Decimal(str(d["cost_usd"]))) for d in body["by_door"]] == expected
    assert body["by_door"][0]["door"] == "messages"  # the live 0.5 puts it first
    assert sum(d["requests"] for d in body["by_door"]) == body["total_requests"]


@pytest.mark.parametrize("door", [*DOORS, None])
def test_a_door_filtered_summary_is_the_same_from_rollups_as_from_the_log(alice, bob, door):
    _spread_doors(alice)
    _spread_doors(bob, days=3)
    live = usage_summary(user_id=alice.pk, days=30, door=door)
    rollups_refresh()
    GatewayRequestFactory(user=bob, door=door or "chat")  # someone else's live row changes nothing
    rolled = usage_summary(user_id=alice.pk, days=30, door=door)
    assert rolled.totals == live.totals
    assert rolled.daily == live.daily
    assert rolled.p95_latency_ms == live.p95_latency_ms
    for name in ("by_provider", "by_model", "by_door"):
        assert [(g.name, g.requests, g.cost_usd) for g in getattr(rolled, name)] == [
            (g.name, g.requests, g.cost_usd) for g in getattr(live, name)
        ]
    logged = GatewayRequest.objects.filter(user=alice, **({"door": door} if door else {}))
    assert rolled.totals.requests == logged.count()
    assert rolled.totals.cost_usd == logged.aggregate(c=Sum("total_cost_usd"))["c"]
    assert {g.name for g in rolled.by_door} == ({door} if door else set(DOORS))


def test_a_door_filter_on_usage_counts_only_that_door_across_rollups_and_live(alice, alice_api):
    _spread_doors(alice)
    rollups_refresh()
    GatewayRequestFactory(user=alice, door="responses", model="gpt-4o", total_cost_usd=Decimal("0.3"))
    body = alice_api.get("/v1/analytics/usage", {"days": 30, "door": "responses"}).json()
    logged = GatewayRequest.objects.filter(user=alice, door="responses")
    assert body["total_requests"] == logged.count()
    assert Decimal(str(body["total_cost_usd"])) == logged.aggregate(c=Sum("total_cost_usd"))["c"]
    assert sum(d["requests"] for d in body["daily_stats"]) == logged.count()
    assert sum(m["requests"] for m in body["by_model"]) == logged.count()
    assert sum(p["requests"] for p in body["by_provider"]) == logged.count()
    assert [d["door"] for d in body["by_door"]] == ["responses"]
    listed = alice_api.get("/v1/analytics/requests", {"door": "responses", "per_page": 100}).json()
    assert listed["total"] == body["total_requests"]


@pytest.mark.parametrize(
    "params",
    [
        {"door": "chat"},
        {"door": "messages", "model": "gpt-4o"},
        {"door": "responses", "status": "error"},
        {"door": "embeddings", "start_date": "DAYS_AGO_4"},
    ],
)
def test_list_totals_from_rollups_with_a_door_filter_match_counting_the_rows(alice, alice_api, params):
    _spread_doors(alice)
    rollups_refresh()
    GatewayRequestFactory(user=alice, door=params["door"], model="gpt-4o", status="error")  # live
    today = timezone.now().date()
    query = {
        name: (today - timedelta(days=int(value.rsplit("_", 1)[1]))).isoformat()
        if value.startswith("DAYS_AGO")
        else value
        for name, value in params.items()
    }
    rows = GatewayRequest.objects.filter(user=alice, door=query["door"])
    if "model" in query:
        rows = rows.filter(model=query["model"])
    if "status" in query:
        rows = rows.filter(status=query["status"])
    if "start_date" in query:
        rows = rows.filter(created_at__date__gte=query["start_date"])
    body = alice_api.get("/v1/analytics/requests", {**query, "per_page": 100}).json()
    assert body["total"] == rows.count() == len(body["requests"])
