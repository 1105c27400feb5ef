"""Base URLs edited in Django admin are validated: http or https only, anything else is refused unchanged."""

from __future__ import annotations

import pytest
from django.forms.models import model_to_dict

from providers.models import Provider

pytestmark = pytest.mark.django_db


def _post(client, provider: Provider, base_url: str):
    data = {k: v for k, v in model_to_dict(provider).items() if v is not None}
    data["base_url"] = base_url
    data["active"] = "on" if provider.active else ""
    return client.post(f"/admin/providers/provider/{provider.pk}/change/", data)


@pytest.mark.parametrize(
    "base_url",
    ["ftp://api.openai.com/v1", "javascript:alert(1)", "file:///etc/passwd", "api.openai.com/v1", "http//x"],
)
def test_a_base_url_that_is_not_http_or_https_is_refused(client, admin_user, catalog, base_url):
    provider = Provider.objects.get(name="openai")
    before = provider.base_url
    client.force_login(admin_user)
    response = _post(client, provider, base_url)
    assert response.status_code == 200  # the form again, with its error
    assert "Enter a valid URL" in response.content.decode()
    provider.refresh_from_db()
    assert provider.base_url == before


def test_an_https_base_url_is_saved(client, admin_user, catalog):
    provider = Provider.objects.get(name="openai")
    client.force_login(admin_user)
    response = _post(client, provider, "https://proxy.example.com/v1")
    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.base_url == "https://proxy.example.com/v1"
