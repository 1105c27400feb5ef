"""Analytics by team and by key: the team / api_key / key filters on /v1/analytics/*, the by_team and by_key
breakdowns, and who sees a team key's requests (its team's members, while they are members)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from accounts.services import api_key_issue, team_create, team_member_add, team_member_remove
from analytics.selectors import usage_summary
from analytics.services import rollups_refresh
from analytics.tests.factories import GatewayRequestFactory
from analytics.visibility import rows_visible_to
from routing.models import GatewayRequest

pytestmark = pytest.mark.django_db

USAGE = "/v1/analytics/usage"
REQUESTS = "/v1/analytics/requests"


@pytest.fixture
def world(alice, bob):
    """alice and bob in team "core"; alice's personal key and a core key each; carol outside, with a key of
    her own. Costs are distinct powers of two, so every sum says which rows it counted."""
    from accounts.tests.factories import UserFactory

    carol = UserFactory(username="carol")
    core = team_create(name="core", members=[alice, bob])
    other = team_create(name="other", members=[carol])
    keys = {
        "alice": api_key_issue(user=alice, name="alice-laptop")[0],
        "alice_core": api_key_issue(user=alice, name="alice-core", team=core)[0],
        "bob": api_key_issue(user=bob, name="bob-laptop")[0],
        "bob_core": api_key_issue(user=bob, name="bob-core", team=core)[0],
        "carol_other": api_key_issue(user=carol, name="carol-other", team=other)[0],
    }
    now = timezone.now()
    costs = {"alice": "1", "alice_core": "2", "bob": "4", "bob_core": "8", "carol_other": "16"}
    for name, key in keys.items():
        for days_ago in (0, 3):  # one row today (live), one three days ago (rolled up when refreshed)
            GatewayRequestFactory(
                user=key.user,
                api_key=key,
                created_at=now - timedelta(days=days_ago, minutes=5),
                total_cost_usd=Decimal(costs[name]),
            )
    GatewayRequestFactory(user=alice, api_key=None, total_cost_usd=Decimal("0.5"))  # the dashboard's compare
    return {"core": core, "other": other, "keys": keys, "carol": carol}


def _api(raw_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.mark.parametrize("refresh", [False, True])
def test_a_member_sees_their_own_rows_and_every_row_of_their_teams_keys(alice, world, alice_api, refresh):
    if refresh:
        rollups_refresh()
    body = alice_api.get(USAGE).json()
    # alice's personal key 2 x 1, no key 0.5, core keys 2 x 2 and 2 x 8 (bob's included); not bob's personal
    # key, not carol's team.
    assert Decimal(str(body["total_cost_usd"])) == Decimal("2.5") + 4 + 16
    assert body["total_requests"] == 2 + 1 + 2 + 2
    listed = alice_api.get(REQUESTS, {"per_page": 100}).json()
    assert listed["total"] == body["total_requests"] == len(listed["requests"])


@pytest.mark.parametrize("refresh", [False, True])
def test_by_team_and_by_key_break_the_usage_down_cost_descending(alice, world, alice_api, refresh):
    if refresh:
        rollups_refresh()
    body = alice_api.get(USAGE).json()
    keys, core = world["keys"], world["core"]
    assert [(t["team_id"], t["team"], t["requests"], t["cost_usd"]) for t in body["by_team"]] == [
        (core.pk, "core", 4, 20),
        (None, None, 3, 2.5),
    ]
    assert [(k["key_id"], k["name"], k["key"], k["team_id"], k["cost_usd"]) for k in body["by_key"]] == [
        (keys["bob_core"].pk, "bob-core", keys["bob_core"].prefix, core.pk, 16),
        (keys["alice_core"].pk, "alice-core", keys["alice_core"].prefix, core.pk, 4),
        (keys["alice"].pk, "alice-laptop", keys["alice"].prefix, None, 2),
        (None, None, None, None, 0.5),
    ]
    assert sum(k["requests"] for k in body["by_key"]) == body["total_requests"]


@pytest.mark.parametrize("refresh", [False, True])
def test_the_team_filter_counts_only_that_teams_keys_everywhere(alice, world, alice_api, refresh):
    if refresh:
        rollups_refresh()
    core = world["core"]
    body = alice_api.get(USAGE, {"team": core.pk}).json()
    assert body["total_cost_usd"] == 20 and body["total_requests"] == 4
    assert [t["team"] for t in body["by_team"]] == ["core"]
    assert sum(d["requests"] for d in body["daily_stats"]) == 4
    listed = alice_api.get(REQUESTS, {"team": core.pk, "per_page": 100}).json()
    assert listed["total"] == 4 == len(listed["requests"])


@pytest.mark.parametrize("refresh", [False, True])
def test_the_key_filters_by_id_and_by_display_prefix(alice, world, alice_api, refresh):
    if refresh:
        rollups_refresh()
    key = world["keys"]["bob_core"]
    for params in ({"api_key": key.pk}, {"key": key.prefix}):
        body = alice_api.get(USAGE, params).json()
        assert body["total_cost_usd"] == 16 and [k["name"] for k in body["by_key"]] == ["bob-core"]
        listed = alice_api.get(REQUESTS, {**params, "per_page": 100}).json()
        assert listed["total"] == 2 == len(listed["requests"])


@pytest.mark.parametrize("refresh", [False, True])
def test_another_teams_or_users_keys_filter_to_nothing(alice, world, alice_api, refresh):
    if refresh:
        rollups_refresh()
    keys = world["keys"]
    for params in (
        {"team": world["other"].pk},
        {"api_key": keys["carol_other"].pk},
        {"key": keys["bob"].prefix},
    ):
        assert alice_api.get(USAGE, params).json()["total_requests"] == 0
        assert alice_api.get(REQUESTS, params).json()["total"] == 0


@pytest.mark.parametrize("refresh", [False, True])
def test_a_member_removed_from_a_team_loses_its_data_at_once(alice, bob, world, bob_api, refresh):
    if refresh:
        rollups_refresh()
    core = world["core"]
    alice_row = GatewayRequest.objects.filter(api_key=world["keys"]["alice_core"]).first()
    own_team_row = GatewayRequest.objects.filter(api_key=world["keys"]["bob_core"]).first()
    assert bob_api.get(f"{REQUESTS}/{alice_row.id}").status_code == 200
    assert bob_api.get(USAGE, {"team": core.pk}).json()["total_requests"] == 4

    team_member_remove(team=core, user=bob)

    assert bob_api.get(f"{REQUESTS}/{alice_row.id}").status_code == 404
    assert bob_api.get(f"{REQUESTS}/{own_team_row.id}").status_code == 404  # made by bob, but the team's
    assert bob_api.get(USAGE, {"team": core.pk}).json()["total_requests"] == 0
    body = bob_api.get(USAGE).json()
    assert body["total_cost_usd"] == 8 and body["by_team"] == [
        {"team_id": None, "team": None, "requests": 2, "cost_usd": 8}
    ]
    assert bob_api.get(REQUESTS, {"per_page": 100}).json()["total"] == 2


def test_joining_a_team_shows_its_history(world, alice):
    carol = world["carol"]
    team_member_add(team=world["core"], user=carol)
    summary = usage_summary(days=30, where=rows_visible_to(user_id=carol.pk))
    assert summary.totals.cost_usd == 20 + 32  # core's rows, and her own team's


@pytest.mark.parametrize("params", [{"team": "x"}, {"team": "0"}, {"api_key": "-3"}, {"key": "k" * 17}])
def test_bad_team_or_key_parameters_are_a_400_naming_them(alice_api, params):
    (name,) = params
    for url in (USAGE, REQUESTS):
        response = alice_api.get(url, params)
        assert response.status_code == 400
        assert response.json()["error"]["param"] == name


@pytest.mark.parametrize("team", [True, False])
def test_a_team_or_key_filtered_summary_is_the_same_from_rollups_as_from_the_log(world, team):
    where = rows_visible_to(user_id=world["keys"]["alice"].user_id)
    narrow = {"api_key__team_id": world["core"].pk} if team else {"api_key_id": world["keys"]["alice"].pk}
    from django.db.models import Q

    live = usage_summary(days=30, where=where & Q(**narrow))
    rollups_refresh()
    rolled = usage_summary(days=30, where=where & Q(**narrow))
    assert rolled.totals == live.totals and rolled.daily == live.daily
    assert rolled.p95_latency_ms == live.p95_latency_ms
    for name in ("by_model", "by_key", "by_team", "by_user"):
        assert [(g.name, g.id, g.requests, g.cost_usd) for g in getattr(rolled, name)] == [
            (g.name, g.id, g.requests, g.cost_usd) for g in getattr(live, name)
        ]
    logged = GatewayRequest.objects.filter(**narrow)
    assert rolled.totals.cost_usd == logged.aggregate(c=Sum("total_cost_usd"))["c"]


def test_the_refresh_rolls_up_by_key(world):
    from analytics.models import DailyLatency, DailyUsage

    result = rollups_refresh()
    for key in world["keys"].values():
        logged = GatewayRequest.objects.filter(api_key=key, created_at__lt=result.rolled_until)
        rolled = DailyUsage.objects.filter(api_key=key).aggregate(n=Sum("requests"), c=Sum("cost_usd"))
        assert rolled["n"] == logged.count() > 0
        assert rolled["c"] == logged.aggregate(c=Sum("total_cost_usd"))["c"]
        assert DailyLatency.objects.filter(api_key=key).aggregate(n=Sum("count"))["n"] == logged.count()


def test_by_user_names_each_member(alice, bob, world):
    from analytics.visibility import rows_of_team

    summary = usage_summary(days=30, where=rows_of_team(team_id=world["core"].pk))
    assert [(g.name, g.cost_usd) for g in summary.by_user] == [("bob", 16), ("alice", 4)]


def test_the_openapi_schema_lists_the_team_and_key_parameters_and_breakdowns(client):
    schema = client.get("/openapi.json").json()
    for url in (USAGE, REQUESTS):
        names = {p["name"] for p in schema["paths"][url]["get"]["parameters"]}
        assert {"team", "api_key", "key", "door"} <= names
    summary = schema["components"]["schemas"]["AnalyticsUsageSummary"]
    assert {"by_team", "by_key"} <= set(summary["required"])
    assert {"team_id", "team", "requests", "cost_usd"} == set(
        schema["components"]["schemas"]["AnalyticsUsageTeam"]["properties"]
    )
