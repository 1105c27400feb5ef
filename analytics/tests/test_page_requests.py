"""The requests page: the log with filters in the URL, search, 20 per page, and page links."""

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.tests.factories import GatewayRequestFactory

pytestmark = pytest.mark.django_db

URL = "/dashboard/requests/"


def test_full_page_lists_rows_with_badges_and_links_to_detail(client, alice):
    row = GatewayRequestFactory(user=alice, prompt_text="p" * 60, cached=True)
    client.force_login(alice)
    response = client.get(URL)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" in html and 'id="request-filters"' in html
    assert f'href="/dashboard/requests/{row.id}/"' in html
    assert "p" * 50 + "..." in html
    assert "badge-success" in html and "badge-cache" in html


def test_htmx_request_gets_only_the_results_fragment(client, alice):
    GatewayRequestFactory(user=alice)
    client.force_login(alice)
    response = client.get(URL, {"search": "france"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="request-results"')
    assert "<html" not in html and 'id="request-filters"' not in html
    assert "1 request" in html


def test_filters_and_search_narrow_the_list(client, alice):
    GatewayRequestFactory(user=alice, model="gpt-4o", prompt_text="alpha question")
    GatewayRequestFactory(
        user=alice, model="deepseek-chat", provider="deepseek", status="error", prompt_text="beta"
    )
    client.force_login(alice)
    assert "alpha question" not in client.get(URL, {"status": "error"}).content.decode()
    searched = client.get(URL, {"search": "ALPHA"}).content.decode()
    assert "alpha question" in searched and ">beta<" not in searched
    by_provider = client.get(URL, {"provider": "deepseek"}).content.decode()
    assert "beta" in by_provider and "alpha question" not in by_provider


def test_twenty_per_page_with_page_links_that_keep_the_filters(client, alice):
    now = timezone.now()
    for index in range(45):
        GatewayRequestFactory(user=alice, created_at=now - timedelta(seconds=index), model="gpt-4o")
    client.force_login(alice)
    html = client.get(URL, {"model": "gpt-4o", "page": 2}).content.decode()
    assert "21\u201340 of 45 requests" in html
    assert "?model=gpt-4o&amp;page=3" in html
    assert html.count('class="row-link"') == 20


def test_a_page_past_the_end_says_so(client, alice):
    GatewayRequestFactory(user=alice)
    client.force_login(alice)
    html = client.get(URL, {"page": 9}).content.decode()
    assert "past the end" in html


def test_bad_filters_show_the_error_not_a_crash(client, alice):
    client.force_login(alice)
    response = client.get(URL, {"start_date": "not-a-date"})
    assert response.status_code == 400
    # The error itself, not the filter form's own start_date field (which every page renders).
    assert '<div class="form-error" role="alert">\n      <p>start_date: ' in response.content.decode()
    partial = client.get(URL, {"status": "bogus"}, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    assert "<p>status: Select a valid choice. bogus is not one of the available choices.</p>" in (
        partial.content.decode()
    )


def test_an_empty_log_says_what_to_do(client, alice):
    client.force_login(alice)
    assert "No requests yet" in client.get(URL).content.decode()


def test_another_users_rows_never_appear(client, alice, bob):
    GatewayRequestFactory(user=bob, prompt_text="bob's secret plan")
    client.force_login(alice)
    assert "secret plan" not in client.get(URL).content.decode()
    assert "secret plan" not in client.get(URL, {"user": "bob"}).content.decode()


def test_staff_see_every_user_with_a_user_column_and_filter(client, admin_user, alice, bob):
    GatewayRequestFactory(user=alice, prompt_text="from alice")
    GatewayRequestFactory(user=bob, prompt_text="from bob")
    client.force_login(admin_user)
    html = client.get(URL).content.decode()
    assert "from alice" in html and "from bob" in html and "<th>User</th>" in html
    only_bob = client.get(URL, {"user": "bob"}).content.decode()
    assert "from bob" in only_bob and "from alice" not in only_bob


def test_the_door_filter_offers_every_door_and_keeps_the_choice(client, alice):
    client.force_login(alice)
    html = client.get(URL, {"door": "messages"}).content.decode()
    assert '<select name="door" id="id_door">' in html
    assert '<option value="">All doors</option>' in html
    for door in ("chat", "responses", "embeddings"):
        assert f'<option value="{door}">{door}</option>' in html
    assert '<option value="messages" selected>messages</option>' in html


def test_the_door_filter_shows_only_that_doors_rows_on_the_page_and_in_the_fragment(client, alice):
    GatewayRequestFactory(user=alice, prompt_text="asked over chat")
    GatewayRequestFactory(user=alice, door="messages", prompt_text="asked over messages")
    client.force_login(alice)
    page = client.get(URL, {"door": "messages"})
    html = page.content.decode()
    assert page.status_code == 200 and "<html" in html
    assert "asked over messages" in html and "asked over chat" not in html
    assert "1 request" in html and '<span class="badge badge-muted">messages</span>' in html
    fragment = client.get(URL, {"door": "messages"}, HTTP_HX_REQUEST="true")
    partial = fragment.content.decode()
    assert fragment.status_code == 200 and partial.lstrip().startswith('<section id="request-results"')
    assert "asked over messages" in partial and "asked over chat" not in partial
    everything = client.get(URL).content.decode()
    assert "asked over chat" in everything and "asked over messages" in everything
    assert "<th>Door</th>" in everything


def test_a_door_with_no_rows_says_no_match(client, alice):
    GatewayRequestFactory(user=alice)
    client.force_login(alice)
    assert "No requests match these filters" in client.get(URL, {"door": "embeddings"}).content.decode()


def test_a_bad_door_shows_the_error_not_a_crash(client, alice):
    client.force_login(alice)
    response = client.get(URL, {"door": "bogus"})
    assert response.status_code == 400
    assert "door:" in response.content.decode()
    partial = client.get(URL, {"door": "bogus"}, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and "door:" in partial.content.decode()


# --- teams and keys


@pytest.fixture
def core(alice, bob):
    from accounts.services import api_key_issue, team_create

    team = team_create(name="core", members=[alice, bob])
    return {
        "team": team,
        "alice": api_key_issue(user=alice, name="alice-core", team=team)[0],
        "bob": api_key_issue(user=bob, name="bob-core", team=team)[0],
        "bob_personal": api_key_issue(user=bob, name="bob-own")[0],
    }


def test_a_member_sees_teammates_team_key_rows_with_a_user_column(client, alice, bob, core):
    mine = GatewayRequestFactory(user=alice, prompt_text="alice personal")
    theirs = GatewayRequestFactory(user=bob, api_key=core["bob"], prompt_text="bob for core")
    hidden = GatewayRequestFactory(user=bob, api_key=core["bob_personal"], prompt_text="bob private")
    client.force_login(alice)
    html = client.get(URL).content.decode()
    assert "alice personal" in html and "bob for core" in html and "bob private" not in html
    assert "<th>User</th>" in html and "core</span>" in html
    assert client.get(f"/dashboard/requests/{theirs.id}/").status_code == 200
    assert client.get(f"/dashboard/requests/{hidden.id}/").status_code == 404
    assert client.get(f"/dashboard/requests/{mine.id}/").status_code == 200


def test_the_team_and_key_filters_offer_ones_teams_and_keys_and_narrow_the_list(client, alice, core):
    GatewayRequestFactory(user=alice, prompt_text="personal one")
    GatewayRequestFactory(user=alice, api_key=core["alice"], prompt_text="core by alice")
    GatewayRequestFactory(user=core["bob"].user, api_key=core["bob"], prompt_text="core by bob")
    client.force_login(alice)
    html = client.get(URL).content.decode()
    assert f'<option value="{core["team"].pk}">core</option>' in html
    assert "bob-core (" in html and "bob-own" not in html  # the team's keys, not bob's own
    by_team = client.get(URL, {"team": core["team"].pk}, HTTP_HX_REQUEST="true").content.decode()
    assert "core by alice" in by_team and "core by bob" in by_team and "personal one" not in by_team
    by_key = client.get(URL, {"api_key": core["bob"].pk}).content.decode()
    assert "core by bob" in by_key and "core by alice" not in by_key
    assert f'<option value="{core["bob"].pk}" selected>' in by_key


def test_a_removed_member_loses_the_teams_rows_on_the_page_at_once(client, alice, bob, core):
    from accounts.services import team_member_remove

    row = GatewayRequestFactory(user=bob, api_key=core["bob"], prompt_text="bob for core")
    client.force_login(alice)
    assert "bob for core" in client.get(URL).content.decode()
    team_member_remove(team=core["team"], user=alice)
    assert "bob for core" not in client.get(URL).content.decode()
    assert client.get(f"/dashboard/requests/{row.id}/").status_code == 404


def test_a_bad_team_filter_shows_the_error_not_a_crash(client, alice):
    client.force_login(alice)
    response = client.get(URL, {"team": "abc"})
    assert response.status_code == 400 and "team" in response.content.decode()


def _haikus(user, count):
    now = timezone.now()
    for index in range(count):
        GatewayRequestFactory(
            user=user, prompt_text=f"haiku {index}", created_at=now - timedelta(seconds=index)
        )


def test_a_capped_count_reads_as_at_least_and_the_pager_offers_no_last_page(client, alice, settings):
    settings.ROUTER_SEARCH_COUNT_CAP = 30
    _haikus(alice, 65)
    client.force_login(alice)
    html = client.get(URL, {"search": "haiku"}, HTTP_HX_REQUEST="true").content.decode()
    assert ">1\u201320 of 30+ requests</p>" in html
    assert 'title="Matches are counted up to a cap' in html
    assert "?search=haiku&amp;page=2" in html  # the next page and its number
    assert "page=3" not in html and "page=4" not in html  # no last page it can't know
    assert '<span class="gap">…</span>' in html


def test_a_page_past_the_cap_shows_its_rows_and_the_last_one_an_exact_count(client, alice, settings):
    settings.ROUTER_SEARCH_COUNT_CAP = 30
    _haikus(alice, 65)
    client.force_login(alice)
    third = client.get(URL, {"search": "haiku", "page": 3}).content.decode()
    assert ">41\u201360 of 60+ requests</p>" in third
    assert 'rel="next"' in third
    last = client.get(URL, {"search": "haiku", "page": 4}).content.decode()
    assert ">61\u201365 of 65 requests</p>" in last
    assert 'rel="next"' not in last and "Matches are counted up to a cap" not in last


def test_a_search_under_the_cap_shows_its_exact_count_and_last_page(client, alice, settings):
    settings.ROUTER_SEARCH_COUNT_CAP = 30
    _haikus(alice, 30)
    client.force_login(alice)
    html = client.get(URL, {"search": "haiku"}).content.decode()
    assert ">1\u201320 of 30 requests</p>" in html
    assert "Matches are counted up to a cap" not in html
    assert "?search=haiku&amp;page=2" in html and '<span class="gap">' not in html
