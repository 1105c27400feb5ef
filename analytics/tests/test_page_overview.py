"""The overview page: cards, charts data and tables, for one's own data; staff pick a user or see everyone."""

import json
from decimal import Decimal

import pytest

from analytics.tests.factories import GatewayRequestFactory

pytestmark = pytest.mark.django_db

URL = "/dashboard/"


def test_it_redirects_anonymous_visitors_to_the_login_page(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_site_root_redirects_to_the_dashboard(client):
    assert client.get("/")["Location"] == "/dashboard/"


def test_full_page_shows_cards_charts_and_the_cost_per_model_table(client, alice):
    GatewayRequestFactory(user=alice, model="gpt-4o", total_cost_usd=Decimal("0.0042"), latency_ms=1234)
    client.force_login(alice)
    response = client.get(URL)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" in html and "Overview" in html
    assert 'data-chart="daily"' in html and 'data-chart="providers"' in html
    assert "$0.0042" in html and "1,234 ms" in html
    assert "gpt-4o" in html
    assert "chart.umd.min.js" in html and "htmx.min.js" in html
    chart = json.loads(
        html.split('id="overview-chart-data" type="application/json">')[1].split("</script>")[0]
    )
    assert sum(chart["daily"]["requests"]) == 1
    assert chart["providers"]["labels"] == ["openai"]


def test_htmx_request_gets_only_the_body_fragment(client, alice):
    client.force_login(alice)
    response = client.get(URL, {"days": 7}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="overview-body">')
    assert "<html" not in html
    assert "last 7 days" in html


def test_an_empty_account_gets_an_empty_state_that_says_what_to_do(client, alice):
    client.force_login(alice)
    html = client.get(URL).content.decode()
    assert "No requests in the last 30 days" in html
    assert "/dashboard/keys/" in html


def test_a_user_never_sees_another_users_numbers(client, alice, bob):
    GatewayRequestFactory(user=bob, model="deepseek-reasoner", total_cost_usd=Decimal(7))
    client.force_login(alice)
    html = client.get(URL, {"user": "bob"}).content.decode()
    assert "deepseek-reasoner" not in html
    assert "$7.00" not in html


def test_staff_see_everyone_by_default_and_can_pick_a_user(client, admin_user, alice, bob):
    GatewayRequestFactory(user=alice, model="gpt-4o")
    GatewayRequestFactory(user=bob, model="deepseek-reasoner", provider="deepseek")
    client.force_login(admin_user)
    everyone = client.get(URL).content.decode()
    assert "gpt-4o" in everyone and "deepseek-reasoner" in everyone
    assert '<option value="bob"' in everyone
    only_bob = client.get(URL, {"user": "bob"}).content.decode()
    assert "deepseek-reasoner" in only_bob and "gpt-4o" not in only_bob
    assert client.get(URL, {"user": "nobody"}).status_code == 404


def test_an_unknown_period_falls_back_to_30_days(client, alice):
    client.force_login(alice)
    assert "last 30 days" in client.get(URL, {"days": "1000"}).content.decode()


def _by_door_rows(html: str) -> list[str]:
    table = html.split('id="usage-by-door"')[1].split("</table>")[0]
    return [row.split("</tr>")[0] for row in table.split("<tbody>")[1].split("<tr>")[1:]]


def test_the_by_door_table_lists_requests_and_cost_per_door_cost_descending(client, alice):
    GatewayRequestFactory(user=alice, total_cost_usd=Decimal("0.01"))
    GatewayRequestFactory(user=alice, door="messages", total_cost_usd=Decimal("0.5"))
    GatewayRequestFactory(user=alice, door="messages", total_cost_usd=Decimal("0.25"))
    client.force_login(alice)
    html = client.get(URL).content.decode()
    assert "<h2>By door</h2>" in html
    rows = _by_door_rows(html)
    assert len(rows) == 2
    assert 'href="/dashboard/requests/?door=messages"' in rows[0] and "$0.75" in rows[0]
    assert '<td class="num">2</td>' in rows[0]
    assert 'href="/dashboard/requests/?door=chat"' in rows[1] and "$0.01" in rows[1]
    partial = client.get(URL, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and len(_by_door_rows(partial)) == 2


def test_the_by_door_links_keep_the_staff_users_choice(client, admin_user, bob):
    GatewayRequestFactory(user=bob, door="embeddings")
    client.force_login(admin_user)
    html = client.get(URL, {"user": "bob"}).content.decode()
    assert 'href="/dashboard/requests/?door=embeddings&amp;user=bob"' in html


def test_an_empty_account_has_no_door_rows(client, alice):
    client.force_login(alice)
    card = client.get(URL).content.decode().split('id="usage-by-door"')[1].split('<div class="card"')[0]
    assert "By door" in card and "No traffic yet." in card and "<table" not in card


def _table_rows(html: str, table_id: str) -> list[str]:
    table = html.split(f'id="{table_id}"')[1].split("</table>")[0]
    return [row.split("</tr>")[0] for row in table.split("<tbody>")[1].split("<tr>")[1:]]


def test_by_key_and_by_team_tables_link_to_the_filtered_log(client, alice, bob):
    from accounts.services import api_key_issue, team_create

    team = team_create(name="core", members=[alice, bob])
    team_key = api_key_issue(user=bob, name="bob-core", team=team)[0]
    own_key = api_key_issue(user=alice, name="laptop")[0]
    GatewayRequestFactory(user=bob, api_key=team_key, total_cost_usd=Decimal("0.5"))
    GatewayRequestFactory(user=alice, api_key=own_key, total_cost_usd=Decimal("0.25"))
    client.force_login(alice)
    html = client.get(URL).content.decode()
    keys = _table_rows(html, "usage-by-key")
    assert f'href="/dashboard/requests/?api_key={team_key.pk}"' in keys[0] and "$0.50" in keys[0]
    assert "laptop" in keys[1] and "personal" in keys[1]
    teams = _table_rows(html, "usage-by-team")
    assert f'href="/dashboard/requests/?team={team.pk}"' in teams[0] and "$0.50" in teams[0]
    assert "personal" in teams[1] and "$0.25" in teams[1]


def test_the_team_filter_narrows_the_overview(client, alice, bob):
    from accounts.services import api_key_issue, team_create

    team = team_create(name="core", members=[alice])
    key = api_key_issue(user=alice, name="core-key", team=team)[0]
    GatewayRequestFactory(user=alice, api_key=key, total_cost_usd=Decimal("0.5"))
    GatewayRequestFactory(user=alice, total_cost_usd=Decimal("0.25"))
    client.force_login(alice)
    html = client.get(URL, {"team": team.pk}, HTTP_HX_REQUEST="true").content.decode()
    assert '<strong class="value" data-testid="stat-requests">1</strong>' in html
    full = client.get(URL, {"team": team.pk}).content.decode()
    assert f'<option value="{team.pk}" selected>core</option>' in full


def test_the_budget_gauge_shows_the_window_nearest_its_limit_as_budgets_count_it(client, alice):
    from django.utils import timezone

    from budgets.models import Budget
    from budgets.periods import month_start, period_start

    now = timezone.now()
    Budget.objects.create(
        scope="user", user=alice, period="monthly", period_start=month_start(now),
        spent_usd=Decimal(1), own_limit_usd=Decimal(10),
    )  # fmt: skip
    Budget.objects.create(
        scope="user", user=alice, period="daily", period_start=period_start("daily", now),
        spent_usd=Decimal(1), own_limit_usd=Decimal(2),
    )  # fmt: skip
    client.force_login(alice)
    card = client.get(URL).content.decode().split('id="overview-budget"')[1].split("</dl>")[0]
    assert "daily" in card and "50%" in card and "$1.00" in card and "$2.00" in card
    assert 'href="/dashboard/budget/"' in card


def test_without_a_window_the_budget_card_says_there_is_no_limit(client, alice):
    client.force_login(alice)
    card = client.get(URL).content.decode().split('id="overview-budget"')[1].split("</div>\n      </div>")[0]
    assert "No budget window yet" in card
