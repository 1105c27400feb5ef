"""The API keys page: list, create (the key is shown once), revoke."""

import pytest

from accounts.models import ApiKey
from accounts.services import api_key_issue

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
