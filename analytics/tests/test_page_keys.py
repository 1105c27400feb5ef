"""The API keys page: list (team, spend this month, windows, rate limits), create (personal or for one's team; the
key is shown once), a key's daily / monthly limit, revoke."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import api_key_issue, team_create
from analytics.tests.factories import GatewayRequestFactory
from budgets.models import Budget
from budgets.periods import month_start, period_start

pytestmark = pytest.mark.django_db

URL = "/dashboard/keys/"


def test_full_page_lists_ones_own_keys(client, alice, bob):
    api_key_issue(user=alice, name="laptop")
    api_key_issue(user=bob, name="bobs-key")
    client.force_login(alice)
    html = client.get(URL).content.decode()
    assert "<html" in html and "laptop" in html and "bobs-key" not in html
    assert "amr_" in html  # the display prefix


def test_htmx_request_gets_only_the_body_fragment(client, alice):
    client.force_login(alice)
    html = client.get(URL, HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="keys-body">') and "<html" not in html


def test_creating_a_key_shows_it_once(client, alice):
    client.force_login(alice)
    html = client.post(URL, {"name": "ci", "expires_in_days": "30"}, HTTP_HX_REQUEST="true").content.decode()
    key = ApiKey.objects.get(user=alice, name="ci")
    raw = html.split('id="new-key-value"')[0].rsplit('value="', 1)[1].split('"')[0]
    assert raw.startswith(key.prefix) and len(raw) == 44
    assert key.expires_at is not None
    assert raw not in client.get(URL).content.decode()


def test_a_created_key_authenticates_against_the_api(client, alice):
    from rest_framework.test import APIClient

    client.force_login(alice)
    html = client.post(URL, {"name": "ci"}).content.decode()
    raw = html.split('id="new-key-value"')[0].rsplit('value="', 1)[1].split('"')[0]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/v1/analytics/usage").status_code == 200


def test_revoking_a_key(client, alice):
    key, _ = api_key_issue(user=alice, name="old")
    client.force_login(alice)
    response = client.post(f"/dashboard/keys/{key.pk}/revoke/")
    assert response.status_code == 303
    key.refresh_from_db()
    assert key.status == "revoked"


def test_revoking_with_htmx_returns_the_updated_list(client, alice):
    key, _ = api_key_issue(user=alice, name="old")
    client.force_login(alice)
    html = client.post(f"/dashboard/keys/{key.pk}/revoke/", HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="keys-body">') and "revoked" in html


def test_another_users_key_cannot_be_revoked(client, alice, bob):
    key, _ = api_key_issue(user=bob)
    client.force_login(alice)
    assert client.post(f"/dashboard/keys/{key.pk}/revoke/").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_revoking_needs_post(client, alice):
    key, _ = api_key_issue(user=alice)
    client.force_login(alice)
    assert client.get(f"/dashboard/keys/{key.pk}/revoke/").status_code == 405


def test_a_name_is_required(client, alice):
    client.force_login(alice)
    response = client.post(URL, {"name": ""})
    assert response.status_code == 400
    assert not ApiKey.objects.filter(user=alice).exists()


# --- teams, spend, windows, rate limits and a key's own limits


def _row(html: str, key) -> str:
    return html.split(f'<tr data-key-id="{key.pk}">')[1].split("</tr>")[0]


def test_each_key_shows_its_team_spend_this_month_windows_and_rate_limits(client, alice):
    team = team_create(name="core", members=[alice])
    team.rate_limit_rpm = 600
    team.save()
    key = api_key_issue(user=alice, name="core-key", team=team, rate_limit_rpm=60)[0]
    key.rate_limit_tpm = 12_500
    key.save()
    personal = api_key_issue(user=alice, name="laptop")[0]
    GatewayRequestFactory(user=alice, api_key=key, total_cost_usd=Decimal("0.25"))
    GatewayRequestFactory(user=alice, api_key=key, total_cost_usd=Decimal("0.5"))
    GatewayRequestFactory(  # last month's
        user=alice,
        api_key=key,
        total_cost_usd=Decimal(7),
        created_at=month_start(timezone.now()) - timedelta(hours=1),
    )
    Budget.objects.create(
        scope="key", api_key=key, period="daily", period_start=period_start("daily", timezone.now()),
        spent_usd=Decimal("0.75"), own_limit_usd=Decimal(5),
    )  # fmt: skip
    client.force_login(alice)
    html = client.get(URL).content.decode()
    row = _row(html, key)
    assert "core" in row and key.prefix in row
    assert '<td class="num" data-testid="key-spend">$0.75</td>' in row
    windows = row.split('data-testid="key-windows">')[1].split("</td>")[0]
    assert "daily: $0.75 of $5.00" in windows and "resets" in windows
    limits = row.split('data-testid="key-rate-limits">')[1].split("</td>")[0]
    assert "60 rpm" in limits and "12.5k tpm" in limits and "team: 600 rpm" in limits
    other = _row(html, personal)
    assert "personal" in other and "$0.00" in other and "default rpm" in other


def test_creating_a_team_key_for_a_team_one_belongs_to(client, alice):
    team = team_create(name="core", members=[alice])
    client.force_login(alice)
    assert f'<option value="{team.pk}">Team core</option>' in client.get(URL).content.decode()
    html = client.post(URL, {"name": "ci", "team": team.pk}, HTTP_HX_REQUEST="true").content.decode()
    key = ApiKey.objects.get(user=alice, name="ci")
    assert key.team == team and 'id="new-key-value"' in html and "data-copy" in html


def test_a_team_key_for_a_team_one_is_not_in_is_refused(client, alice, bob):
    team = team_create(name="bobs", members=[bob])
    client.force_login(alice)
    response = client.post(URL, {"name": "sneaky", "team": team.pk})
    assert response.status_code == 400
    assert not ApiKey.objects.filter(name="sneaky").exists()


def test_setting_and_removing_a_keys_daily_and_monthly_limits(client, alice):
    key = api_key_issue(user=alice, name="laptop")[0]
    client.force_login(alice)
    url = f"/dashboard/keys/{key.pk}/limit/"
    assert client.post(url, {"period": "daily", "limit_usd": "2"}).status_code == 303
    html = client.post(url, {"period": "monthly", "limit_usd": "20"}, HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="keys-body">')
    assert "its monthly limit is now $20.00." in html
    assert "monthly: $0.00 of $20.00" in _row(html, key)
    limits = dict(Budget.objects.filter(scope="key", api_key=key).values_list("period", "own_limit_usd"))
    assert limits == {"daily": Decimal(2), "monthly": Decimal(20)}
    client.post(url, {"period": "daily", "remove": "1"})
    assert list(Budget.objects.filter(scope="key", api_key=key).values_list("period", flat=True)) == [
        "monthly"
    ]


@pytest.mark.parametrize(
    "data",
    [{"period": "daily", "limit_usd": "-1"}, {"period": "weekly", "limit_usd": "1"}, {"period": "daily"}],
)
def test_a_bad_key_limit_is_a_400_that_changes_nothing(client, alice, data):
    key = api_key_issue(user=alice, name="laptop")[0]
    client.force_login(alice)
    response = client.post(f"/dashboard/keys/{key.pk}/limit/", data, HTTP_HX_REQUEST="true")
    assert "field-error" in response.content.decode()
    assert client.post(f"/dashboard/keys/{key.pk}/limit/", data).status_code == 400
    assert not Budget.objects.filter(api_key=key).exists()


def test_another_users_key_limit_cannot_be_set(client, alice, bob):
    key = api_key_issue(user=bob, name="bobs")[0]
    client.force_login(alice)
    assert (
        client.post(f"/dashboard/keys/{key.pk}/limit/", {"period": "daily", "limit_usd": "1"}).status_code
        == 404
    )
    assert not Budget.objects.filter(api_key=key).exists()


def test_a_revoked_keys_limit_is_refused(client, alice):
    from accounts.services import api_key_revoke

    key = api_key_revoke(key=api_key_issue(user=alice, name="old")[0])
    client.force_login(alice)
    response = client.post(f"/dashboard/keys/{key.pk}/limit/", {"period": "daily", "limit_usd": "1"})
    assert response.status_code == 400
    assert not Budget.objects.filter(api_key=key).exists()
