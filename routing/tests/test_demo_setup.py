"""`make run`'s set-up keeps its state: the same demo key and admin login on every run, never reset."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from accounts.models import ApiKey, User

pytestmark = pytest.mark.django_db


def _run() -> tuple[str, str]:
    out = io.StringIO()
    call_command("demo_setup", stdout=out)
    text = out.getvalue()
    key = re.search(r"Demo API key \(user 'demo'\):\s+(\S+)", text)
    password = re.search(r"admin / (\S+)", text)
    assert key and password, text
    return key.group(1), password.group(1)


def test_a_second_run_prints_the_same_key_and_login_and_resets_nothing(settings, tmp_path, client):
    settings.ROUTER_STATE_DIR = tmp_path
    key, password = _run()
    hashed = User.objects.get(username="admin").password
    assert (tmp_path / "demo-credentials.json").stat().st_mode & 0o777 == 0o600
    assert client.login(username="admin", password=password)
    assert _run() == (key, password)
    assert User.objects.get(username="admin").password == hashed  # open sessions stay logged in
    assert client.get("/dashboard/").status_code == 200
    assert ApiKey.objects.filter(user__username="demo", revoked_at__isnull=True).count() == 1
    response = client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200


def test_a_revoked_key_or_a_changed_password_is_replaced_and_the_old_key_stops(settings, tmp_path):
    settings.ROUTER_STATE_DIR = tmp_path
    key, password = _run()
    ApiKey.objects.filter(user__username="demo").update(revoked_at="2026-01-01T00:00:00Z")
    admin = User.objects.get(username="admin")
    admin.set_password("changed-in-the-admin")
    admin.save()
    new_key, new_password = _run()
    assert new_key != key and new_password != password
    assert authenticate(username="admin", password=new_password) is not None
    assert ApiKey.objects.filter(user__username="demo", revoked_at__isnull=True).count() == 1


def test_make_run_offers_todays_models_and_retires_those_past_their_date(settings, tmp_path):
    from datetime import date

    from providers.models import Model, ModelPrice
    from providers.services import catalog_import_bundled

    settings.ROUTER_STATE_DIR = tmp_path
    key, _ = _run()
    catalog_import_bundled(today=date(2026, 12, 1))  # the map's dates, read on a fixed day
    active = set(Model.objects.filter(active=True).values_list("model_id", flat=True))
    assert {"claude-sonnet-4-6", "gemini-3.5-flash", "gpt-4o-mini"} <= active
    assert not Model.objects.get(model_id="o3-mini").active  # retired on 2026-10-23
    assert Model.objects.get(model_id="o3-mini").deprecation_date == date(2026, 10, 23)
    prices = ModelPrice.objects.count()
    _run()
    catalog_import_bundled(today=date(2026, 12, 1))
    assert ModelPrice.objects.count() == prices  # re-running never duplicates
    from django.test import Client

    listed = Client().get("/v1/models", headers={"Authorization": f"Bearer {key}"}).json()["data"]
    assert {"claude-sonnet-4-6", "gemini-3.5-flash"} <= {m["id"] for m in listed}
    assert "o3-mini" not in {m["id"] for m in listed}
