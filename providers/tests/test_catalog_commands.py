"""seed_catalog is idempotent and respects admin edits; import_catalog adds and updates the right rows."""

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from providers.catalog import catalog_get, price_in_force
from providers.models import Model, ModelPrice, Provider
from providers.services import model_price_set

pytestmark = pytest.mark.django_db
SAMPLE = Path(__file__).parent / "data" / "price-map-small.json"


def test_seed_catalog_creates_the_fourteen_models_with_prices():
    call_command("seed_catalog")
    assert Provider.objects.count() == 4
    assert Model.objects.count() == 14
    assert ModelPrice.objects.count() == 14
    sonnet = Model.objects.get(model_id="claude-sonnet-4-5-20250929")
    assert sonnet.aliases == ["claude-sonnet-4.5", "claude-sonnet-4-5"]
    assert sonnet.max_output_tokens == 64000
    price = price_in_force(sonnet)
    assert (price.input_per_1m, price.cached_input_per_1m, price.output_per_1m) == (
        Decimal("3.00"),
        Decimal("0.30"),
        Decimal("15.00"),
    )


def test_seed_catalog_twice_leaves_one_copy_of_everything():
    call_command("seed_catalog")
    call_command("seed_catalog")
    assert Provider.objects.count() == 4
    assert Model.objects.count() == 14
    assert ModelPrice.objects.count() == 14


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
    assert not Model.objects.filter(model_id__in=["text-embedding-3-small", "mistral-large"]).exists()
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
    # importing the same map twice changes nothing more
    prices_before = ModelPrice.objects.count()
    call_command("import_catalog", str(SAMPLE))
    assert ModelPrice.objects.count() == prices_before


def test_import_catalog_refuses_an_unreadable_file(tmp_path):
    from django.core.management.base import CommandError

    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(CommandError):
        call_command("import_catalog", str(bad))
