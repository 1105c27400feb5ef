"""seed_catalog is idempotent and respects admin edits; import_catalog adds and updates the right rows."""

import json
from datetime import date
from decimal import Decimal
from decimal import Decimal as D
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from providers.catalog import catalog_get, price_in_force
from providers.models import Model, ModelPrice, Provider
from providers.pricing import Rates
from providers.services import model_price_set

pytestmark = pytest.mark.django_db
SAMPLE = Path(__file__).parent / "data" / "price-map-small.json"


def test_seed_catalog_creates_the_fourteen_chat_and_three_embedding_models_with_prices():
    call_command("seed_catalog")
    assert Provider.objects.count() == 4
    assert Model.objects.filter(kind="chat").count() == 14
    assert Model.objects.count() == ModelPrice.objects.count() == 17
    sonnet = Model.objects.get(model_id="claude-sonnet-4-5-20250929")
    assert sonnet.aliases == ["claude-sonnet-4.5", "claude-sonnet-4-5"]
    assert sonnet.max_output_tokens == 64000
    price = price_in_force(sonnet)
    assert (price.input_per_1m, price.cached_input_per_1m, price.output_per_1m) == (
        Decimal("3.00"),
        Decimal("0.30"),
        Decimal("15.00"),
    )


def test_seed_catalog_prices_anthropic_cache_writes_and_the_long_context_tiers():
    call_command("seed_catalog")
    opus = price_in_force(Model.objects.get(model_id="claude-opus-4-1-20250805"))
    assert (opus.cache_write_5m_per_1m, opus.cache_write_1h_per_1m) == (D("18.75"), D("30"))
    assert opus.long_context_threshold is None
    sonnet = price_in_force(Model.objects.get(model_id="claude-sonnet-4-5-20250929"))
    assert sonnet.rates == Rates(
        input_per_1m=D("3"),
        output_per_1m=D("15"),
        cached_input_per_1m=D("0.3"),
        cache_write_5m_per_1m=D("3.75"),
        cache_write_1h_per_1m=D("6"),
        long_context_threshold=200_000,
        long_input_per_1m=D("6"),
        long_output_per_1m=D("22.5"),
        long_cached_input_per_1m=D("0.6"),
    )
    pro = price_in_force(Model.objects.get(model_id="gemini-2.5-pro"))
    assert (pro.long_context_threshold, pro.long_input_per_1m, pro.long_output_per_1m) == (
        200_000,
        D("2.5"),
        D("15"),
    )
    assert pro.cache_write_5m_per_1m is None and pro.cache_write_1h_per_1m is None
    mini = price_in_force(Model.objects.get(model_id="gpt-4o-mini"))
    assert mini.cache_write_5m_per_1m is None and mini.long_context_threshold is None
    # the catalog snapshot carries the whole price row
    assert catalog_get(fresh=True).by_name("claude-sonnet-4.5").rates == sonnet.rates


def test_seed_catalog_seeds_the_embedding_models_at_their_input_prices():
    call_command("seed_catalog")
    seeded = {
        m.model_id: (m.provider.name, m.context_window, m.max_output_tokens, price_in_force(m).rates)
        for m in Model.objects.filter(kind="embedding")
    }
    assert seeded == {
        "text-embedding-3-small": ("openai", 8191, 0, Rates(input_per_1m=D("0.02"), output_per_1m=D(0))),
        "text-embedding-3-large": ("openai", 8191, 0, Rates(input_per_1m=D("0.13"), output_per_1m=D(0))),
        "gemini-embedding-001": ("google", 2048, 0, Rates(input_per_1m=D("0.15"), output_per_1m=D(0))),
    }
    assert catalog_get(fresh=True).by_name("gemini-embedding-001").is_embedding


def test_seed_catalog_twice_leaves_one_copy_of_everything():
    call_command("seed_catalog")
    call_command("seed_catalog")
    assert Provider.objects.count() == 4
    assert Model.objects.count() == 17
    assert ModelPrice.objects.count() == 17


def test_seed_catalog_never_overwrites_an_admin_edit():
    call_command("seed_catalog")
    mini = Model.objects.get(model_id="gpt-4o-mini")
    model_price_set(
        model=mini, input_per_1m=Decimal("0.20"), output_per_1m=Decimal("0.80"), cached_input_per_1m=None
    )
    Model.objects.filter(pk=mini.pk).update(display_name="Mini (edited)", active=False)
    call_command("seed_catalog")
    mini.refresh_from_db()
    assert mini.display_name == "Mini (edited)" and mini.active is False
    assert price_in_force(mini).input_per_1m == Decimal("0.20")


def test_a_price_change_adds_a_row_and_leaves_the_earlier_one_untouched():
    call_command("seed_catalog")
    mini = Model.objects.get(model_id="gpt-4o-mini")
    first = price_in_force(mini)
    new = model_price_set(
        model=mini,
        input_per_1m=Decimal("0.30"),
        output_per_1m=Decimal("1.20"),
        cached_input_per_1m=Decimal("0.15"),
    )
    first_after = ModelPrice.objects.get(pk=first.pk)
    assert (first_after.input_per_1m, first_after.output_per_1m) == (Decimal("0.15"), Decimal("0.60"))
    assert price_in_force(mini).pk == new.pk
    assert catalog_get(fresh=True).by_name("gpt-4o-mini").price_id == new.pk


def test_setting_the_same_price_again_adds_nothing():
    call_command("seed_catalog")
    mini = Model.objects.get(model_id="gpt-4o-mini")
    assert (
        model_price_set(
            model=mini,
            input_per_1m=Decimal("0.15"),
            output_per_1m=Decimal("0.60"),
            cached_input_per_1m=Decimal("0.075"),
        )
        is None
    )
    assert mini.prices.count() == 1


def test_import_catalog_adds_and_updates_the_right_rows(capsys):
    call_command("seed_catalog")
    call_command("import_catalog", str(SAMPLE))
    out = capsys.readouterr().out
    assert "1 models added" in out
    # the one new chat model of our providers arrives inactive; embeddings and other vendors are ignored
    haiku = Model.objects.get(model_id="claude-haiku-4-5-20251001")
    assert haiku.active is False and haiku.context_window == 200000 and haiku.max_output_tokens == 64000
    assert price_in_force(haiku).input_per_1m == Decimal("1.0000000000")
    assert not Model.objects.filter(model_id="mistral-large").exists()
    embedding = Model.objects.get(model_id="text-embedding-3-small")  # seeded; the map's entry is not chat
    assert embedding.kind == "embedding" and embedding.prices.count() == 1
    # a changed price becomes a new effective-dated row; the old one stays
    mini = Model.objects.get(model_id="gpt-4o-mini")
    assert mini.prices.count() == 2
    assert price_in_force(mini).input_per_1m == Decimal("0.16")
    # an unchanged price adds nothing, but metadata such as deprecation dates is updated
    gpt4o = Model.objects.get(model_id="gpt-4o")
    assert gpt4o.prices.count() == 1
    assert gpt4o.deprecation_date == date(2027, 1, 14)
    flash = Model.objects.get(model_id="gemini-2.5-flash")
    assert flash.deprecation_date == date(2026, 12, 1)
    assert Model.objects.filter(model_id="deepseek-chat").count() == 1
    deepseek = Model.objects.get(model_id="deepseek-chat")
    assert deepseek.context_window == 131072
    # the map's cache-write and long-context rates agree with the seeded ones: nothing new
    assert Model.objects.get(model_id="claude-sonnet-4-5-20250929").prices.count() == 1
    assert Model.objects.get(model_id="gemini-2.5-pro").prices.count() == 1
    # the map gives Haiku 4.5's 5-minute write rate; the 1-hour one is derived (2x input)
    haiku_price = price_in_force(haiku)
    assert (haiku_price.cache_write_5m_per_1m, haiku_price.cache_write_1h_per_1m) == (D("1.25"), D("2"))
    # importing the same map twice changes nothing more
    prices_before = ModelPrice.objects.count()
    call_command("import_catalog", str(SAMPLE))
    assert ModelPrice.objects.count() == prices_before


def test_import_catalog_reads_cache_write_and_long_context_rates(tmp_path):
    call_command("seed_catalog")
    entries = {
        # an Anthropic model without write rates in the map: both derived from its input rate
        "claude-new-1": {"input_cost_per_token": 2e-06, "cache_read_input_token_cost": 2e-07},
        # an Anthropic model with both in the map: taken as they are
        "claude-new-2": {
            "input_cost_per_token": 2e-06,
            "cache_creation_input_token_cost": 2.6e-06,
            "cache_creation_input_token_cost_above_1hr": 4.2e-06,
        },
        # another vendor's write rate is taken as given and never derived
        "gpt-new": {"litellm_provider": "openai", "input_cost_per_token": 4e-06},
        "gpt-new-writes": {
            "litellm_provider": "openai",
            "input_cost_per_token": 4e-06,
            "cache_creation_input_token_cost": 5e-06,
        },
        # a long-context tier: the map's *_above_200k_tokens rates, from 200,000 prompt tokens on
        "gemini/gemini-new-pro": {
            "litellm_provider": "gemini",
            "input_cost_per_token": 2e-06,
            "input_cost_per_token_above_200k_tokens": 4e-06,
            "output_cost_per_token_above_200k_tokens": 1.8e-05,
            "cache_read_input_token_cost": 2e-07,
            "cache_read_input_token_cost_above_200k_tokens": 4e-07,
        },
    }
    common = {
        "litellm_provider": "anthropic",
        "mode": "chat",
        "max_input_tokens": 1000,
        "max_output_tokens": 10,
    }
    price_map = {key: {**common, "output_cost_per_token": 1e-05, **entry} for key, entry in entries.items()}
    source = tmp_path / "map.json"
    source.write_text(json.dumps(price_map))

    call_command("import_catalog", str(source))

    def rates(model_id: str) -> Rates:
        return price_in_force(Model.objects.get(model_id=model_id)).rates

    assert (rates("claude-new-1").cache_write_5m_per_1m, rates("claude-new-1").cache_write_1h_per_1m) == (
        D("2.5"),
        D("4"),
    )
    assert (rates("claude-new-2").cache_write_5m_per_1m, rates("claude-new-2").cache_write_1h_per_1m) == (
        D("2.6"),
        D("4.2"),
    )
    assert rates("gpt-new").cache_write_5m_per_1m is None and rates("gpt-new").cache_write_1h_per_1m is None
    assert (rates("gpt-new-writes").cache_write_5m_per_1m, rates("gpt-new-writes").cache_write_1h_per_1m) == (
        D("5"),
        None,
    )
    pro = rates("gemini-new-pro")
    assert (pro.long_context_threshold, pro.long_input_per_1m, pro.long_output_per_1m) == (
        200_000,
        D("4"),
        D("18"),
    )
    assert pro.long_cached_input_per_1m == D("0.4")
    assert rates("claude-new-1").long_context_threshold is None
    # the same map again adds no row: every rate compares equal to the row in force
    prices_before = ModelPrice.objects.count()
    call_command("import_catalog", str(source))
    assert ModelPrice.objects.count() == prices_before


def test_a_price_row_keeps_long_context_rates_only_with_a_threshold():
    call_command("seed_catalog")
    mini = Model.objects.get(model_id="gpt-4o-mini")
    with pytest.raises(ValueError, match="long_context_threshold"):
        model_price_set(
            model=mini,
            input_per_1m=D("1"),
            output_per_1m=D("1"),
            cached_input_per_1m=None,
            long_input_per_1m=D("2"),
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelPrice.objects.create(
            model=mini, input_per_1m=D("1"), output_per_1m=D("1"), long_output_per_1m=D("2")
        )


def test_a_new_cache_write_rate_is_a_price_change():
    call_command("seed_catalog")
    mini = Model.objects.get(model_id="gpt-4o-mini")
    new = model_price_set(
        model=mini,
        input_per_1m=D("0.15"),
        output_per_1m=D("0.60"),
        cached_input_per_1m=D("0.075"),
        cache_write_5m_per_1m=D("0.1875"),
    )
    assert new is not None and mini.prices.count() == 2


def test_import_catalog_refuses_an_unreadable_file(tmp_path):
    from django.core.management.base import CommandError

    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(CommandError):
        call_command("import_catalog", str(bad))
