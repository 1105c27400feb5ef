"""API keys are stored hashed, accepted in three headers, and refused with 401 in the envelope."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.services import api_key_hash, api_key_issue, api_key_revoke

pytestmark = pytest.mark.django_db


def _assert_401(response):
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["type"] == "authentication_error"
    assert body["error"]["code"] == "invalid_api_key"


def test_it_stores_only_the_hash_and_a_display_prefix(alice):
    key, raw = api_key_issue(user=alice, name="ci")
    assert raw.startswith("amr_") and len(raw) == 44
    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.key_hash == api_key_hash(raw)
    assert raw not in {
        getattr(stored, f.attname) for f in ApiKey._meta.fields if isinstance(getattr(stored, f.attname), str)
    }
    assert stored.prefix == raw[:12]


@pytest.mark.parametrize("header", [("HTTP_X_API_KEY", "{key}"), ("HTTP_AUTHORIZATION", "Bearer {key}")])
def test_it_accepts_the_key_in_each_supported_header(alice_key, catalog, header):
    client = APIClient()
    response = client.get("/v1/models", **{header[0]: header[1].format(key=alice_key)})
    assert response.status_code == 200
    assert response.json()["object"] == "list"


def test_it_refuses_a_missing_key():
    _assert_401(APIClient().get("/v1/models"))


def test_it_refuses_an_unknown_key(alice_key):
    _assert_401(APIClient().get("/v1/models", HTTP_AUTHORIZATION="Bearer amr_" + "x" * 40))


def test_it_refuses_a_revoked_key(alice):
    key, raw = api_key_issue(user=alice)
    api_key_revoke(key=key)
    _assert_401(APIClient().get("/v1/models", HTTP_X_API_KEY=raw))


def test_it_refuses_an_expired_key(alice):
    key, raw = api_key_issue(user=alice, expires_in_days=1)
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    _assert_401(APIClient().get("/v1/models", HTTP_X_API_KEY=raw))


def test_it_refuses_a_key_of_an_inactive_user(alice, alice_key):
    alice.is_active = False
    alice.save()
    _assert_401(APIClient().get("/v1/models", HTTP_X_API_KEY=alice_key))


def test_it_records_when_a_key_was_last_used(alice):
    key, raw = api_key_issue(user=alice)
    assert key.last_used_at is None
    APIClient().get("/v1/models", HTTP_X_API_KEY=raw)
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_create_api_key_command_prints_the_key_alone_on_the_last_line(db, capsys):
    from django.core.management import call_command

    call_command("create_api_key", "carol", "--name", "cli", "--expires-in-days", "30")
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert last_line.startswith("amr_") and " " not in last_line
    key = ApiKey.objects.get(key_hash=api_key_hash(last_line))
    assert key.user.username == "carol" and key.name == "cli" and key.expires_at is not None
