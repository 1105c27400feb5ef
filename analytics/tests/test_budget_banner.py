"""The budget alert banner: on every dashboard page, for the users a window concerns (its owner, the members of
its team), while its period lasts or until they dismiss it."""

from datetime import timedelta
from html import unescape

import pytest
from django.utils import timezone

from accounts.services import api_key_issue, team_create, team_member_remove
from budgets.models import Budget, BudgetAlert
from budgets.periods import period_start

pytestmark = pytest.mark.django_db

PAGES = [
    "/dashboard/",
    "/dashboard/requests/",
    "/dashboard/models/",
    "/dashboard/budget/",
    "/dashboard/keys/",
]


def _alert(threshold=80, period="monthly", *, stale=False, **owner):
    start = period_start(period, timezone.now())
    scope = "key" if "api_key" in owner else "team" if "team" in owner else "user"
    window = Budget.objects.create(
        scope=scope, period=period, period_start=start, spent_usd=8, own_limit_usd=10, **owner
    )
    alert_start = start - timedelta(days=40) if stale else start
    return BudgetAlert.objects.create(
        budget=window, threshold=threshold, period_start=alert_start, spent_usd=8, limit_usd=10
    )


def _banners(html: str) -> str:
    if 'aria-label="Budget alerts"' not in html:
        return ""
    return unescape(html.split('aria-label="Budget alerts"')[1].split('<div class="page-head">')[0])


@pytest.mark.parametrize("page", PAGES)
def test_the_owner_sees_the_banner_on_every_page(client, alice, page):
    _alert(user=alice)
    client.force_login(alice)
    banners = _banners(client.get(page).content.decode())
    assert "Your monthly budget is at 80%" in banners and "$8.00 of $10.00" in banners
    assert 'href="/dashboard/budget/"' in banners


def test_no_banner_for_someone_else_or_for_a_period_that_ended(client, alice, bob):
    _alert(user=bob)
    _alert(user=alice, stale=True)
    client.force_login(alice)
    assert _banners(client.get("/dashboard/").content.decode()) == ""


def test_team_members_see_the_teams_alert_until_they_leave(client, alice, bob):
    team = team_create(name="core", members=[alice, bob])
    _alert(100, "daily", team=team)
    client.force_login(alice)
    banners = _banners(client.get("/dashboard/").content.decode())
    assert (
        "Team core's daily budget is at 100%" in banners and f'href="/dashboard/teams/{team.pk}/"' in banners
    )
    assert 'class="banner banner-over"' in client.get("/dashboard/").content.decode()
    team_member_remove(team=team, user=alice)
    assert _banners(client.get("/dashboard/").content.decode()) == ""


def test_a_key_holder_sees_their_keys_alert(client, alice):
    key = api_key_issue(user=alice, name="laptop")[0]
    _alert(api_key=key, period="daily")
    client.force_login(alice)
    assert "Key “laptop”'s daily budget is at 80%" in _banners(client.get("/dashboard/").content.decode())


def test_an_htmx_fragment_carries_no_banner(client, alice):
    _alert(user=alice)
    client.force_login(alice)
    assert "Budget alerts" not in client.get("/dashboard/", HTTP_HX_REQUEST="true").content.decode()


def test_dismissing_hides_it_for_the_rest_of_the_period(client, alice):
    alert = _alert(user=alice)
    other = _alert(100, "daily", user=alice)
    client.force_login(alice)
    response = client.post(f"/dashboard/alerts/{alert.pk}/dismiss/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response.content == b""
    banners = _banners(client.get("/dashboard/").content.decode())
    assert "monthly" not in banners and f'data-alert-id="{other.pk}"' in banners
    response = client.post(f"/dashboard/alerts/{other.pk}/dismiss/", {"next": "/dashboard/keys/"})
    assert response.status_code == 303 and response["Location"] == "/dashboard/keys/"
    assert _banners(client.get("/dashboard/").content.decode()) == ""
    # A new period's alert is a new one: it shows again.
    BudgetAlert.objects.create(
        budget=alert.budget,
        threshold=80,
        period_start=alert.period_start + timedelta(seconds=1),
        spent_usd=8,
        limit_usd=10,
    )
    assert "Your monthly budget is at 80%" in _banners(client.get("/dashboard/").content.decode())


def test_another_users_alert_cannot_be_dismissed(client, alice, bob):
    alert = _alert(user=bob)
    client.force_login(alice)
    assert client.post(f"/dashboard/alerts/{alert.pk}/dismiss/").status_code == 404


def test_dismissing_never_redirects_off_site(client, alice):
    alert = _alert(user=alice)
    client.force_login(alice)
    response = client.post(f"/dashboard/alerts/{alert.pk}/dismiss/", {"next": "https://evil.example.com/"})
    assert response["Location"] == "/dashboard/"


def test_the_banner_is_read_only_where_it_is_shown(client, admin_user, monkeypatch):
    def boom(**kwargs):
        raise AssertionError("read the alerts")

    monkeypatch.setattr("analytics.context_processors.budget_alerts_shown", boom)
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200  # the admin never shows it
    assert client.get("/dashboard/", HTTP_HX_REQUEST="true").status_code == 200  # nor does a fragment
