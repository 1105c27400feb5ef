"""GET /v1/analytics/requests: the caller's log, newest first, filtered, searched and paginated."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.services import rollups_refresh
from analytics.tests.factories import GatewayRequestFactory

pytestmark = pytest.mark.django_db

URL = "/v1/analytics/requests"


def test_it_answers_with_the_contract_field_names(alice, alice_api):
    GatewayRequestFactory(user=alice)
    body = alice_api.get(URL).json()
    assert set(body) == {"requests", "total", "total_is_lower_bound", "page", "per_page", "total_pages"}
    assert set(body["requests"][0]) == {
        "id",
        "created_at",
        "model",
        "provider",
        "door",
        "prompt_preview",
        "input_tokens",
        "output_tokens",
        "total_cost_usd",
        "latency_ms",
        "status",
        "cached",
    }


def test_rows_render_times_in_utc_with_z_and_money_as_numbers(alice, alice_api):
    GatewayRequestFactory(user=alice)
    row = alice_api.get(URL).json()["requests"][0]
    assert row["created_at"].endswith("Z")
    assert row["total_cost_usd"] == 0.00000825
    assert row["id"].startswith("req_")


def test_it_lists_newest_first(alice, alice_api):
    now = timezone.now()
    old = GatewayRequestFactory(user=alice, created_at=now - timedelta(hours=2))
    new = GatewayRequestFactory(user=alice, created_at=now)
    middle = GatewayRequestFactory(user=alice, created_at=now - timedelta(hours=1))
    ids = [r["id"] for r in alice_api.get(URL).json()["requests"]]
    assert ids == [new.id, middle.id, old.id]


def test_the_preview_is_the_first_50_characters_then_an_ellipsis(alice, alice_api):
    long_prompt = "x" * 49 + "yz" + "tail"
    GatewayRequestFactory(user=alice, prompt_text=long_prompt, created_at=timezone.now())
    GatewayRequestFactory(user=alice, prompt_text="a" * 50, created_at=timezone.now() - timedelta(seconds=1))
    rows = alice_api.get(URL).json()["requests"]
    assert rows[0]["prompt_preview"] == "x" * 49 + "y..."
    assert rows[1]["prompt_preview"] == "a" * 50


def test_pagination_arithmetic(alice, alice_api):
    for _ in range(45):
        GatewayRequestFactory(user=alice)
    body = alice_api.get(URL, {"per_page": 20, "page": 3}).json()
    assert (body["total"], body["page"], body["per_page"], body["total_pages"]) == (45, 3, 20, 3)
    assert len(body["requests"]) == 5
    all_ids = set()
    for page in (1, 2, 3):
        all_ids |= {r["id"] for r in alice_api.get(URL, {"per_page": 20, "page": page}).json()["requests"]}
    assert len(all_ids) == 45


def test_a_page_past_the_end_is_an_empty_list(alice, alice_api):
    GatewayRequestFactory(user=alice)
    body = alice_api.get(URL, {"page": 5}).json()
    assert body["requests"] == []
    assert (body["total"], body["total_pages"], body["page"]) == (1, 1, 5)


def test_no_rows_means_zero_total_pages(alice_api):
    body = alice_api.get(URL).json()
    assert body == {
        "requests": [],
        "total": 0,
        "total_is_lower_bound": False,
        "page": 1,
        "per_page": 20,
        "total_pages": 0,
    }


def test_per_page_defaults_to_20(alice, alice_api):
    for _ in range(21):
        GatewayRequestFactory(user=alice)
    body = alice_api.get(URL).json()
    assert (len(body["requests"]), body["total_pages"]) == (20, 2)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"per_page": 0}, "per_page"),
        ({"per_page": 101}, "per_page"),
        ({"page": 0}, "page"),
        ({"page": "x"}, "page"),
        ({"status": "sleeping"}, "status"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2025-13-40"}, "end_date"),
        ({"start_date": "2025-10-02", "end_date": "2025-10-01"}, "start_date"),
        ({"end_date": "9999-12-31"}, "end_date"),
        ({"start_date": "0001-01-01"}, "start_date"),
        ({"search": "nul\x00byte"}, "search"),
        ({"model": "x" * 129}, "model"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(alice_api, params, param):
    response = alice_api.get(URL, params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_it_filters_by_model_provider_and_status(alice, alice_api):
    GatewayRequestFactory(user=alice, model="gpt-4o", provider="openai")
    GatewayRequestFactory(user=alice, model="deepseek-chat", provider="deepseek", status="error")
    GatewayRequestFactory(user=alice, model="gpt-4o-mini", provider="openai")
    assert alice_api.get(URL, {"model": "gpt-4o"}).json()["total"] == 1
    assert alice_api.get(URL, {"provider": "openai"}).json()["total"] == 2
    assert [r["model"] for r in alice_api.get(URL, {"status": "error"}).json()["requests"]] == [
        "deepseek-chat"
    ]


def test_search_matches_prompt_model_or_provider_case_insensitively(alice, alice_api):
    GatewayRequestFactory(user=alice, prompt_text="Write a HAIKU about queues", model="gpt-4o")
    GatewayRequestFactory(
        user=alice, prompt_text="hello", model="claude-3-5-haiku-20241022", provider="anthropic"
    )
    GatewayRequestFactory(user=alice, prompt_text="hello", model="deepseek-chat", provider="deepseek")
    GatewayRequestFactory(user=alice, prompt_text="nothing to see", model="gpt-4o-mini")
    assert alice_api.get(URL, {"search": "haiku"}).json()["total"] == 2
    assert alice_api.get(URL, {"search": "DeepSeek"}).json()["total"] == 1
    assert alice_api.get(URL, {"search": "OPENAI"}).json()["total"] == 2
    assert alice_api.get(URL, {"search": "zebra"}).json()["total"] == 0


def test_date_range_includes_whole_days_at_both_ends(alice, alice_api):
    now = timezone.now()
    days = [now - timedelta(days=n) for n in (5, 3, 2, 0)]
    for moment in days:
        GatewayRequestFactory(user=alice, created_at=moment)
    start, end = days[1].date().isoformat(), days[2].date().isoformat()
    body = alice_api.get(URL, {"start_date": start, "end_date": end}).json()
    assert body["total"] == 2
    assert alice_api.get(URL, {"start_date": days[2].date().isoformat()}).json()["total"] == 2
    assert alice_api.get(URL, {"end_date": days[1].date().isoformat()}).json()["total"] == 2


def test_date_range_accepts_iso_datetimes(alice, alice_api):
    now = timezone.now().replace(microsecond=0)
    GatewayRequestFactory(user=alice, created_at=now - timedelta(hours=3))
    GatewayRequestFactory(user=alice, created_at=now - timedelta(hours=1))
    since = (now - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    assert alice_api.get(URL, {"start_date": since}).json()["total"] == 1


def test_another_users_requests_never_appear(alice, bob, alice_api, bob_api):
    GatewayRequestFactory(user=alice, prompt_text="alice secret")
    GatewayRequestFactory(user=bob, prompt_text="bob secret")
    assert [r["prompt_preview"] for r in alice_api.get(URL).json()["requests"]] == ["alice secret"]
    assert alice_api.get(URL, {"search": "bob"}).json()["total"] == 0
    assert bob_api.get(URL).json()["total"] == 1


def test_usage_totals_equal_the_sum_over_the_request_list(alice, alice_api):
    now = timezone.now()
    costs = [Decimal("0.0000123"), Decimal("0.5"), Decimal("0.0042"), Decimal("1.23456789")]
    for index, cost in enumerate(costs):
        GatewayRequestFactory(user=alice, created_at=now - timedelta(days=index * 2), total_cost_usd=cost)
    listed = alice_api.get(URL, {"per_page": 100}).json()
    usage = alice_api.get("/v1/analytics/usage", {"days": 30}).json()
    assert usage["total_requests"] == listed["total"] == 4
    listed_sum = sum(Decimal(str(r["total_cost_usd"])) for r in listed["requests"])
    assert Decimal(str(usage["total_cost_usd"])) == listed_sum == sum(costs)


def test_each_row_says_which_door_it_came_through(alice, alice_api):
    GatewayRequestFactory(user=alice, door="messages")
    assert alice_api.get(URL).json()["requests"][0]["door"] == "messages"


def test_the_door_filter_returns_only_that_doors_rows(alice, alice_api):
    now = timezone.now()
    chat = GatewayRequestFactory(user=alice, created_at=now - timedelta(seconds=2))
    messages = GatewayRequestFactory(user=alice, door="messages", created_at=now - timedelta(seconds=1))
    GatewayRequestFactory(user=alice, door="responses", created_at=now)
    only_messages = alice_api.get(URL, {"door": "messages"}).json()
    assert [r["id"] for r in only_messages["requests"]] == [messages.id]
    assert only_messages["total"] == 1
    assert [r["id"] for r in alice_api.get(URL, {"door": "chat"}).json()["requests"]] == [chat.id]
    assert alice_api.get(URL, {"door": "embeddings"}).json()["total"] == 0
    assert alice_api.get(URL).json()["total"] == 3


def test_the_door_filter_combines_with_the_other_filters(alice, alice_api):
    GatewayRequestFactory(user=alice, door="messages", model="gpt-4o")
    GatewayRequestFactory(user=alice, door="messages", model="gpt-4o-mini")
    GatewayRequestFactory(user=alice, door="chat", model="gpt-4o")
    assert alice_api.get(URL, {"door": "messages", "model": "gpt-4o"}).json()["total"] == 1


@pytest.mark.parametrize("door", ["anthropic", "CHAT", "chat/completions"])
def test_a_door_that_does_not_exist_is_a_400_naming_door(alice_api, door):
    response = alice_api.get(URL, {"door": door})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "door"


def test_the_openapi_schema_lists_the_door_parameter_with_its_values(client):
    operation = client.get("/openapi.json").json()["paths"][URL]["get"]
    door = next(p for p in operation["parameters"] if p["name"] == "door")
    assert door["in"] == "query"
    assert sorted(door["schema"]["enum"]) == ["chat", "embeddings", "messages", "responses"]


def _haikus(user, count):
    """`count` rows matching "haiku", one second apart, newest first in the returned list."""
    now = timezone.now()
    return [
        GatewayRequestFactory(user=user, prompt_text=f"haiku {n}", created_at=now - timedelta(seconds=n))
        for n in range(count)
    ]


def test_a_broad_search_counts_up_to_the_cap_and_says_the_total_is_a_lower_bound(alice, alice_api, settings):
    settings.ROUTER_SEARCH_COUNT_CAP = 5
    rows = _haikus(alice, 12)
    GatewayRequestFactory(user=alice, prompt_text="something else")
    body = alice_api.get(URL, {"search": "haiku", "per_page": 2}).json()
    assert (body["total"], body["total_is_lower_bound"], body["total_pages"]) == (5, True, 3)
    assert [r["id"] for r in body["requests"]] == [rows[0].id, rows[1].id]


@pytest.mark.parametrize("matches", [4, 5])
def test_a_search_matching_up_to_the_cap_has_an_exact_total_that_says_so(alice, alice_api, settings, matches):
    settings.ROUTER_SEARCH_COUNT_CAP = 5
    _haikus(alice, matches)
    GatewayRequestFactory(user=alice, prompt_text="something else")
    body = alice_api.get(URL, {"search": "haiku", "per_page": 2}).json()
    expected = (matches, False, -(-matches // 2))
    assert (body["total"], body["total_is_lower_bound"], body["total_pages"]) == expected


def test_pages_past_the_capped_total_answer_with_their_rows_and_raise_the_bound(alice, alice_api, settings):
    settings.ROUTER_SEARCH_COUNT_CAP = 5
    rows = _haikus(alice, 12)
    body = alice_api.get(URL, {"search": "haiku", "per_page": 2, "page": 4}).json()
    assert [r["id"] for r in body["requests"]] == [rows[6].id, rows[7].id]
    assert (body["total"], body["total_is_lower_bound"], body["total_pages"]) == (8, True, 4)


def test_the_last_page_past_the_cap_makes_the_total_exact(alice, alice_api, settings):
    settings.ROUTER_SEARCH_COUNT_CAP = 5
    rows = _haikus(alice, 11)
    body = alice_api.get(URL, {"search": "haiku", "per_page": 2, "page": 6}).json()
    assert [r["id"] for r in body["requests"]] == [rows[10].id]
    assert (body["total"], body["total_is_lower_bound"], body["total_pages"]) == (11, False, 6)


def test_a_page_past_the_end_of_a_capped_search_is_empty_and_keeps_the_bound(alice, alice_api, settings):
    settings.ROUTER_SEARCH_COUNT_CAP = 5
    _haikus(alice, 12)
    body = alice_api.get(URL, {"search": "haiku", "per_page": 2, "page": 7}).json()
    assert body["requests"] == []
    assert (body["total"], body["total_is_lower_bound"], body["total_pages"]) == (5, True, 3)


def test_every_page_of_a_capped_search_together_is_every_match_once(alice, alice_api, settings):
    settings.ROUTER_SEARCH_COUNT_CAP = 3
    rows = _haikus(alice, 9)
    seen, page = [], 1
    while True:
        body = alice_api.get(URL, {"search": "haiku", "per_page": 2, "page": page}).json()
        seen += [r["id"] for r in body["requests"]]
        if not body["total_is_lower_bound"] and page >= body["total_pages"]:
            break
        page += 1
    assert seen == [row.id for row in rows]
    assert body["total"] == 9


def test_totals_from_the_rollups_stay_exact_above_the_cap(alice, alice_api, settings):
    settings.ROUTER_SEARCH_COUNT_CAP = 5
    for days in range(8):
        GatewayRequestFactory(user=alice, created_at=timezone.now() - timedelta(days=days + 1))
    rollups_refresh()
    GatewayRequestFactory(user=alice)  # today's, past the rollups: counted live
    body = alice_api.get(URL, {"per_page": 2}).json()
    assert (body["total"], body["total_is_lower_bound"], body["total_pages"]) == (9, False, 5)


def test_the_openapi_schema_documents_the_lower_bound_flag(client):
    schema = client.get("/openapi.json").json()
    response = schema["paths"][URL]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    listing = schema["components"]["schemas"][response["$ref"].rsplit("/", 1)[1]]
    flag = listing["properties"]["total_is_lower_bound"]
    assert flag["type"] == "boolean"
    assert "at least `total`" in flag["description"]
    assert "total_is_lower_bound" in listing["required"]
