"""The Teams pages: members see their teams, staff all of them; per team its members, keys, budget windows
(gauges, reset dates) and spend by day, model and member; staff add and remove members, set windows, rate
limits and the alert webhook. A non-member doesn't see a team (404); a member who isn't staff can't change it
(403)."""

from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.utils import timezone

from accounts.models import TeamMembership
from accounts.services import api_key_issue, team_create
from accounts.tests.factories import UserFactory
from analytics.tests.factories import GatewayRequestFactory
from budgets.models import Budget, BudgetAlert
from budgets.periods import period_start

pytestmark = pytest.mark.django_db

LIST = "/dashboard/teams/"


def url(team, action: str = "") -> str:
    return f"/dashboard/teams/{team.pk}/{action}"


@pytest.fixture
def core(alice, bob):
    return team_create(name="core", members=[alice, bob])


def _team_window(team, period="monthly", **fields):
    start = period_start(period, timezone.now()) or timezone.now() - timedelta(days=400)
    return Budget.objects.create(scope="team", team=team, period=period, period_start=start, **fields)


# --- seeing teams


def test_the_list_shows_a_member_their_teams_only(client, alice, core):
    team_create(name="elsewhere", members=[UserFactory(username="carol")])
    _team_window(core, "daily", spent_usd=Decimal(5), own_limit_usd=Decimal(50))
    client.force_login(alice)
    html = client.get(LIST).content.decode()
    assert "<html" in html and f'href="/dashboard/teams/{core.pk}/"' in html and "elsewhere" not in html
    assert "daily: $5.00 of $50.00 (10.0%)" in html
    assert 'id="team-create-form"' not in html  # staff create teams
    assert f'href="{LIST}" class="active"' in html  # the nav link


def test_staff_see_every_team_and_can_create_one(client, admin_user, core):
    team_create(name="elsewhere")
    client.force_login(admin_user)
    html = client.get(LIST).content.decode()
    assert "core" in html and "elsewhere" in html and 'id="team-create-form"' in html
    response = client.post(LIST, {"name": "research"})
    from accounts.models import Team

    team = Team.objects.get(name="research")
    assert response.status_code == 303 and response["Location"] == url(team)


def test_a_team_name_taken_or_empty_is_a_400(client, admin_user, core):
    client.force_login(admin_user)
    assert client.post(LIST, {"name": "Core"}).status_code == 400
    assert client.post(LIST, {"name": ""}, HTTP_HX_REQUEST="true").status_code == 200  # htmx swaps 2xx only
    from accounts.models import Team

    assert list(Team.objects.values_list("name", flat=True)) == ["core"]


def test_only_staff_create_teams(client, alice):
    client.force_login(alice)
    assert client.post(LIST, {"name": "mine"}).status_code == 403


def test_the_list_partial_is_its_body(client, alice, core):
    client.force_login(alice)
    html = client.get(LIST, HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="teams-body">') and "<html" not in html


def test_an_empty_list_says_what_happens_next(client, alice):
    client.force_login(alice)
    assert "You are not in a team" in client.get(LIST).content.decode()


def test_the_team_page_shows_members_keys_windows_and_spend(client, alice, bob, core):
    key = api_key_issue(user=bob, name="bob-core", team=core, rate_limit_rpm=30)[0]
    window = _team_window(core, "daily", spent_usd=Decimal(40), own_limit_usd=Decimal(50))
    _team_window(core, "monthly", admin_limit_usd=Decimal(500))
    GatewayRequestFactory(user=bob, api_key=key, model="gpt-4o", total_cost_usd=Decimal("0.3"))
    GatewayRequestFactory(user=alice, api_key=key, model="gpt-4o-mini", total_cost_usd=Decimal("0.1"))
    GatewayRequestFactory(user=alice, total_cost_usd=Decimal(9))  # alice's own: not the team's
    client.force_login(alice)
    response = client.get(url(core))
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html and "<h1>core</h1>" in html
    members = html.split('id="team-members"')[1].split('id="team-keys"')[0]
    assert "alice" in members and "bob" in members and "Remove</button>" not in members
    keys = html.split('id="team-keys"')[1].split("</table>")[0]
    assert "bob-core" in keys and key.prefix in keys and "$0.40" in keys and "30 rpm" in keys
    card = html.split(f'data-window-id="{window.pk}"')[1].split('<div class="card"')[0]
    assert "Daily budget" in card and "80%" in card and "gauge-warn" in card and "Resets" in card
    assert "admin $500.00" in html
    assert 'data-chart="daily"' in html and 'id="team-chart-data"' in html
    by_model = html.split('id="team-by-model"')[1].split("</table>")[0]
    assert by_model.index("gpt-4o<") < by_model.index("gpt-4o-mini") and "$9" not in by_model
    by_member = html.split('id="team-by-member"')[1].split("</table>")[0]
    assert by_member.index("bob") < by_member.index("alice") and "$0.30" in by_member
    assert 'id="team-window-form"' not in html and 'id="team-webhook-form"' not in html  # staff's


def test_the_team_page_partial_is_its_body(client, alice, core):
    client.force_login(alice)
    html = client.get(url(core), {"days": 7}, HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="team-body">') and "<html" not in html
    assert "last 7 days" in html


def test_a_non_member_gets_a_404_and_staff_see_any_team(client, alice, admin_user, core):
    carol = UserFactory(username="carol")
    client.force_login(carol)
    assert client.get(url(core)).status_code == 404
    assert client.get(url(core), HTTP_HX_REQUEST="true").status_code == 404
    client.force_login(admin_user)
    html = client.get(url(core)).content.decode()
    assert 'id="team-window-form"' in html and 'id="team-webhook-form"' in html and "Remove</button>" in html


def test_a_member_removed_loses_the_team_page_at_once(client, alice, core):
    from accounts.services import team_member_remove

    client.force_login(alice)
    assert client.get(url(core)).status_code == 200
    team_member_remove(team=core, user=alice)
    assert client.get(url(core)).status_code == 404
    assert "core" not in client.get(LIST).content.decode().split('id="teams-body"')[1]


def test_the_alerts_of_the_teams_windows_this_period_are_listed(client, alice, core):
    window = _team_window(core, "daily", spent_usd=Decimal(40), own_limit_usd=Decimal(50))
    BudgetAlert.objects.create(
        budget=window, threshold=80, period_start=window.period_start, spent_usd=40, limit_usd=50
    )
    client.force_login(alice)
    html = unescape(client.get(url(core)).content.decode())
    assert "Team core's daily budget is at 80%: $40.00 of $50.00" in html


# --- who may change a team

STAFF_POSTS = [
    ("windows/", {"period": "daily", "own_limit_usd": "5"}),
    ("limits/", {"rate_limit_rpm": "10"}),
    ("webhook/", {"webhook_url": "https://hooks.example.com/x"}),
    ("members/", {"username": "carol"}),
]


@pytest.mark.parametrize(("action", "data"), STAFF_POSTS)
def test_a_member_who_is_not_staff_cannot_change_the_team(client, alice, core, action, data):
    UserFactory(username="carol")
    _team_window(core, own_limit_usd=Decimal(1))
    client.force_login(alice)
    assert client.post(url(core, action), data).status_code == 403
    assert client.post(url(core, action), data, HTTP_HX_REQUEST="true").status_code == 403
    _nothing_changed(core)


@pytest.mark.parametrize(("action", "data"), STAFF_POSTS)
def test_a_non_member_gets_a_404_for_every_change(client, core, action, data):
    UserFactory(username="carol")
    _team_window(core, own_limit_usd=Decimal(1))
    client.force_login(UserFactory(username="dave"))
    assert client.post(url(core, action), data).status_code == 404
    _nothing_changed(core)


def _nothing_changed(team):
    team.refresh_from_db()
    assert team.rate_limit_rpm is None
    assert list(Budget.objects.filter(team=team).values_list("period", "own_limit_usd", "webhook_url")) == [
        ("monthly", Decimal(1), "")
    ]
    assert sorted(team.members.values_list("username", flat=True)) == ["alice", "bob"]


def test_removing_a_member_needs_staff(client, alice, bob, core):
    client.force_login(alice)
    assert client.post(url(core, f"members/{bob.pk}/remove/")).status_code == 403
    assert TeamMembership.objects.filter(team=core, user=bob).exists()


# --- staff change a team


def test_staff_add_and_remove_members(client, admin_user, bob, core):
    carol = UserFactory(username="carol")
    client.force_login(admin_user)
    response = client.post(url(core, "members/"), {"username": "carol"})
    assert response.status_code == 303 and TeamMembership.objects.filter(team=core, user=carol).exists()
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_issue(user=bob, name='bob-core', team=core)[1]}")
    assert api.get("/v1/analytics/usage").status_code == 200
    html = client.post(url(core, f"members/{bob.pk}/remove/"), HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="team-body">') and "bob is no longer in core" in html
    assert not TeamMembership.objects.filter(team=core, user=bob).exists()
    assert api.get("/v1/analytics/usage").status_code == 401  # the team key they held stops working


def test_adding_an_unknown_user_is_a_form_error(client, admin_user, core):
    client.force_login(admin_user)
    response = client.post(url(core, "members/"), {"username": "nobody"})
    assert response.status_code == 400 and "No user has this username." in response.content.decode()
    assert core.members.count() == 2


def test_removing_someone_who_is_not_a_member_is_a_404(client, admin_user, core):
    client.force_login(admin_user)
    assert client.post(url(core, f"members/{UserFactory(username='carol').pk}/remove/")).status_code == 404


def test_staff_set_and_remove_a_team_window(client, admin_user, core):
    client.force_login(admin_user)
    response = client.post(
        url(core, "windows/"), {"period": "daily", "own_limit_usd": "50", "admin_limit_usd": "40"}
    )
    assert response.status_code == 303
    window = Budget.objects.get(scope="team", team=core, period="daily")
    assert (window.own_limit_usd, window.admin_limit_usd) == (Decimal(50), Decimal(40))
    html = client.post(
        url(core, "windows/"), {"period": "daily", "admin_limit_usd": "60"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    window.refresh_from_db()
    assert (window.own_limit_usd, window.admin_limit_usd) == (None, Decimal(60))
    assert "core's daily window is set." in unescape(html) and "admin $60.00" in html
    client.post(url(core, "windows/"), {"period": "daily", "remove": "1"})
    assert not Budget.objects.filter(team=core).exists()


@pytest.mark.parametrize(
    "data",
    [
        {"period": "daily"},  # no limit at all: say remove
        {"period": "daily", "own_limit_usd": "-5"},
        {"period": "daily", "admin_limit_usd": "lots"},
        {"period": "hourly", "own_limit_usd": "5"},
    ],
)
def test_a_bad_team_window_is_a_400_that_changes_nothing(client, admin_user, core, data):
    _team_window(core, own_limit_usd=Decimal(1))
    client.force_login(admin_user)
    response = client.post(url(core, "windows/"), data)
    assert response.status_code == 400 and "field-error" in response.content.decode()
    assert list(Budget.objects.filter(team=core).values_list("period", "own_limit_usd")) == [
        ("monthly", Decimal(1))
    ]


def test_staff_set_the_teams_rate_limits(client, admin_user, core):
    client.force_login(admin_user)
    client.post(url(core, "limits/"), {"rate_limit_rpm": "120", "rate_limit_tpm": "50000"})
    core.refresh_from_db()
    assert (core.rate_limit_rpm, core.rate_limit_tpm) == (120, 50_000)
    client.post(url(core, "limits/"), {"rate_limit_rpm": "", "rate_limit_tpm": "50000"})
    core.refresh_from_db()
    assert (core.rate_limit_rpm, core.rate_limit_tpm) == (None, 50_000)


@pytest.mark.parametrize("data", [{"rate_limit_rpm": "0"}, {"rate_limit_tpm": "-1"}, {"rate_limit_rpm": "x"}])
def test_bad_rate_limits_are_a_400_that_changes_nothing(client, admin_user, core, data):
    client.force_login(admin_user)
    assert client.post(url(core, "limits/"), data).status_code == 400
    core.refresh_from_db()
    assert (core.rate_limit_rpm, core.rate_limit_tpm) == (None, None)


def test_staff_set_the_alert_webhook_and_its_secret_is_shown_once(client, admin_user, core):
    monthly = _team_window(core, own_limit_usd=Decimal(100))
    client.force_login(admin_user)
    html = client.post(
        url(core, "webhook/"), {"webhook_url": "https://hooks.example.com/budget"}
    ).content.decode()
    monthly.refresh_from_db()
    assert monthly.webhook_url == "https://hooks.example.com/budget" and len(monthly.webhook_secret) >= 32
    assert f'value="{monthly.webhook_secret}" id="webhook-secret-value"' in html
    page = client.get(url(core)).content.decode()
    assert monthly.webhook_secret not in page and "hooks.example.com/budget" in page and "(signed)" in page

    client.post(
        url(core, "windows/"), {"period": "daily", "own_limit_usd": "5"}
    )  # a new window alerts there too
    daily = Budget.objects.get(team=core, period="daily")
    assert (daily.webhook_url, daily.webhook_secret) == (monthly.webhook_url, monthly.webhook_secret)

    old = monthly.webhook_secret
    client.post(url(core, "webhook/"), {"webhook_url": "https://hooks.example.com/v2"})
    monthly.refresh_from_db()
    assert monthly.webhook_secret == old  # the same secret unless a new one is asked for
    client.post(url(core, "webhook/"), {"webhook_url": "https://hooks.example.com/v2", "new_secret": "1"})
    assert set(Budget.objects.filter(team=core).values_list("webhook_secret", flat=True)) - {old} != set()

    client.post(url(core, "webhook/"), {"webhook_url": ""})
    assert set(Budget.objects.filter(team=core).values_list("webhook_url", "webhook_secret")) == {("", "")}


@pytest.mark.parametrize("windows", [True, False])
def test_a_bad_webhook_is_a_400_that_changes_nothing(client, admin_user, core, windows):
    if windows:
        _team_window(core, own_limit_usd=Decimal(1))
    client.force_login(admin_user)
    data = {"webhook_url": "not a url" if windows else "https://hooks.example.com/x"}
    response = client.post(url(core, "webhook/"), data)
    assert response.status_code == 400 and "field-error" in response.content.decode()
    assert not Budget.objects.filter(team=core).exclude(webhook_url="").exists()
