"""GET /v1/analytics/models: the catalog with the price in force for each model."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from providers.models import Model, ModelPrice

pytestmark = pytest.mark.django_db

URL = "/v1/analytics/models"


def test_it_lists_every_model_with_the_contract_field_names(catalog, alice_api):
    body = alice_api.get(URL).json()
    assert len(body) == Model.objects.count() == 17
    assert set(body[0]) >= {
        "kind",
        "id",
        "model_id",
        "display_name",
        "provider",
        "input_price_per_1m_tokens",
        "output_price_per_1m_tokens",
        "cached_input_price_per_1m_tokens",
        "context_window",
        "max_output_tokens",
        "is_active",
        "aliases",
    }


def test_embedding_models_are_listed_with_their_kind(catalog, alice_api):
    kinds = {m["model_id"]: m["kind"] for m in alice_api.get(URL).json()}
    assert kinds["gemini-embedding-001"] == kinds["text-embedding-3-small"] == "embedding"
    assert kinds["gpt-4o-mini"] == "chat"


def test_prices_are_per_million_tokens_as_plain_numbers(catalog, alice_api):
    response = alice_api.get(URL)
    mini = next(m for m in response.json() if m["model_id"] == "gpt-4o-mini")
    assert mini["input_price_per_1m_tokens"] == 0.15
    assert mini["output_price_per_1m_tokens"] == 0.6
    assert mini["provider"] == "openai"
    assert b'"input_price_per_1m_tokens":0.15,' in response.content


def test_it_shows_the_price_in_force_not_a_future_or_superseded_one(catalog, alice_api):
    model = Model.objects.get(model_id="gpt-4o-mini")
    now = timezone.now()
    ModelPrice.objects.create(
        model=model, input_per_1m=Decimal("0.2"), output_per_1m=Decimal("0.8"), effective_from=now
    )
    ModelPrice.objects.create(
        model=model,
        input_per_1m=Decimal("9"),
        output_per_1m=Decimal("9"),
        effective_from=now + timedelta(days=1),
    )
    mini = next(m for m in alice_api.get(URL).json() if m["model_id"] == "gpt-4o-mini")
    assert (mini["input_price_per_1m_tokens"], mini["output_price_per_1m_tokens"]) == (0.2, 0.8)


def test_aliases_and_inactive_models_are_shown(catalog, alice_api):
    Model.objects.filter(model_id="gpt-3.5-turbo").update(active=False)
    body = {m["model_id"]: m for m in alice_api.get(URL).json()}
    assert body["gpt-3.5-turbo"]["is_active"] is False
    assert "claude-sonnet-4.5" in body["claude-sonnet-4-5-20250929"]["aliases"]
