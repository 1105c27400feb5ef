"""Django admin for teams (members inline), team API keys, and budget windows (scope, owner, period)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import ApiKey, Team, TeamMembership
from accounts.services import api_key_issue, team_create
from budgets.models import Budget

pytestmark = pytest.mark.django_db


def _inline(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data.update({f"{prefix}-{index}-{name}": value for name, value in row.items()})
    return data


def test_the_team_list_and_change_pages_show_members_and_limits(client, admin_user, alice, bob):
    team = team_create(name="core", members=[alice, bob])
    client.force_login(admin_user)
    listing = client.get("/admin/accounts/team/").content.decode()
    assert "core" in listing and '<td class="field-member_count">2</td>' in listing
    change = client.get(f"/admin/accounts/team/{team.pk}/change/").content.decode()
    assert "memberships-0-user" in change and "rate_limit_rpm" in change


def test_staff_create_a_team_with_its_members_inline(client, admin_user, alice):
    client.force_login(admin_user)
    data = {"name": "research", "rate_limit_rpm": "60", "rate_limit_tpm": ""}
    data |= _inline("memberships", [{"user": str(alice.pk)}])
    response = client.post("/admin/accounts/team/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    team = Team.objects.get(name="research")
    assert team.rate_limit_rpm == 60 and list(team.members.all()) == [alice]


def test_removing_a_member_inline_stops_their_team_key_at_once(client, admin_user, alice):
    from rest_framework.test import APIClient

    team = team_create(name="core", members=[alice])
    raw = api_key_issue(user=alice, name="core-key", team=team)[1]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/v1/analytics/usage").status_code == 200  # and now it's remembered
    membership = TeamMembership.objects.get(team=team, user=alice)
    client.force_login(admin_user)
    data = {"name": "core", "rate_limit_rpm": "", "rate_limit_tpm": ""}
    data |= _inline(
        "memberships", [{"id": str(membership.pk), "user": str(alice.pk), "DELETE": "on"}], initial=1
    )
    assert client.post(f"/admin/accounts/team/{team.pk}/change/", data).status_code == 302
    assert not TeamMembership.objects.filter(team=team).exists()
    assert api.get("/v1/analytics/usage").status_code == 401


def test_a_team_key_created_in_the_admin_belongs_to_the_team(client, admin_user, alice):
    team = team_create(name="core", members=[alice])
    client.force_login(admin_user)
    data = {
        "user": str(alice.pk),
        "team": str(team.pk),
        "name": "from-admin",
        "expires_at_0": "",
        "expires_at_1": "",
    }
    response = client.post("/admin/accounts/apikey/add/", data, follow=True)
    assert "it will not be shown again" in response.content.decode()
    assert ApiKey.objects.get(name="from-admin").team == team
    assert "core" in client.get("/admin/accounts/apikey/").content.decode()


def test_a_team_key_for_someone_outside_the_team_is_a_form_error(client, admin_user, alice, bob):
    team = team_create(name="core", members=[alice])
    client.force_login(admin_user)
    data = {"user": str(bob.pk), "team": str(team.pk), "name": "nope", "expires_at_0": "", "expires_at_1": ""}
    response = client.post("/admin/accounts/apikey/add/", data)
    assert response.status_code == 200 and "bob is not a member of core." in response.content.decode()
    assert not ApiKey.objects.filter(name="nope").exists()


def test_the_budget_admin_shows_scope_owner_and_period(client, admin_user, alice):
    team = team_create(name="core", members=[alice])
    key = api_key_issue(user=alice, name="laptop")[0]
    now = timezone.now()
    Budget.objects.create(scope="team", team=team, period="daily", period_start=now, own_limit_usd=Decimal(5))
    Budget.objects.create(scope="key", api_key=key, period="weekly", period_start=now)
    Budget.objects.create(scope="user", user=alice, period="monthly", period_start=now)
    client.force_login(admin_user)
    listing = client.get("/admin/budgets/budget/").content.decode()
    for text in ("core", "daily", "laptop", "weekly", "alice", "monthly", "field-scope"):
        assert text in listing
    assert "core" in client.get("/admin/budgets/budget/", {"scope__exact": "team"}).content.decode()
    window = Budget.objects.get(scope="team")
    change = client.get(f"/admin/budgets/budget/{window.pk}/change/").content.decode()
    for name in ("scope", "team", "api_key", "period", "admin_limit_usd", "webhook_url"):
        assert f'name="{name}"' in change


def test_a_window_whose_owner_does_not_match_its_scope_is_a_form_error(client, admin_user, alice):
    client.force_login(admin_user)
    data = {
        "scope": "team",
        "user": str(alice.pk),  # a team window needs a team, not a user
        "period": "daily",
        "period_start_0": "2026-01-01",
        "period_start_1": "00:00:00",
        "alert_thresholds": "[80, 100]",
    }
    response = client.post("/admin/budgets/budget/add/", data)
    assert response.status_code == 200 and "errornote" in response.content.decode()
    assert not Budget.objects.exists()
