"""Django admin: base URLs are validated (http or https only), and a model's price edit adds a whole price row."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.forms.models import model_to_dict

from providers.models import Model, Provider

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


def _model_post(client, model, **prices):
    from providers.catalog import price_in_force

    price = price_in_force(model)
    data = {
        "provider": model.provider_id,
        "model_id": model.model_id,
        "display_name": model.display_name,
        "kind": model.kind,
        "aliases": json.dumps(model.aliases),
        "active": "on",
        "context_window": model.context_window,
        "max_output_tokens": model.max_output_tokens,
        "input_per_1m": price.input_per_1m,
        "output_per_1m": price.output_per_1m,
        "prices-TOTAL_FORMS": 1,
        "prices-INITIAL_FORMS": 1,
        "prices-0-id": price.pk,
        "prices-0-model": model.pk,
    }
    for name, value in prices.items():
        data[name] = "" if value is None else value
    return client.post(f"/admin/providers/model/{model.pk}/change/", data)


def test_an_admin_price_edit_with_cache_write_and_long_context_rates_adds_a_row(client, admin_user, catalog):
    from providers.catalog import price_in_force

    model = Model.objects.get(model_id="claude-3-5-haiku-20241022")
    client.force_login(admin_user)
    response = _model_post(
        client,
        model,
        cached_input_per_1m="0.08",
        cache_write_5m_per_1m="1.00",
        cache_write_1h_per_1m="1.70",
        long_context_threshold="100000",
        long_input_per_1m="1.60",
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    price = price_in_force(model)
    assert model.prices.count() == 2
    assert (price.cache_write_1h_per_1m, price.long_context_threshold, price.long_input_per_1m) == (
        Decimal("1.7"),
        100_000,
        Decimal("1.6"),
    )


def test_long_context_rates_without_a_threshold_are_refused_in_admin(client, admin_user, catalog):
    model = Model.objects.get(model_id="gemini-2.5-flash")
    client.force_login(admin_user)
    response = _model_post(client, model, long_output_per_1m="5")
    assert response.status_code == 200
    assert "Long-context rates need a threshold." in response.content.decode()
    assert model.prices.count() == 1
