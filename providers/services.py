"""Catalog writes: seeding, importing a LiteLLM price map, and appending price rows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from providers import seed
from providers.catalog import catalog_invalidate, price_in_force
from providers.models import Model, ModelPrice, Provider
from providers.pricing import RATE_FIELDS, Rates

PER_MILLION = Decimal(1_000_000)
# The price map's provider names → ours, and the prefixes its keys carry for some providers.
IMPORT_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "gemini": "google", "deepseek": "deepseek"}
KEY_PREFIXES = ("gemini/", "deepseek/", "anthropic/", "openai/")
# The map's `*_above_200k_tokens` keys: the long-context tier starts above 200,000 prompt tokens.
MAP_LONG_CONTEXT_THRESHOLD = 200_000


def model_price_set(
    *,
    model: Model,
    input_per_1m: Decimal,
    output_per_1m: Decimal,
    cached_input_per_1m: Decimal | None,
    cache_write_5m_per_1m: Decimal | None = None,
    cache_write_1h_per_1m: Decimal | None = None,
    long_context_threshold: int | None = None,
    long_input_per_1m: Decimal | None = None,
    long_output_per_1m: Decimal | None = None,
    long_cached_input_per_1m: Decimal | None = None,
    source: str = "admin",
    created_by: Any = None,
) -> ModelPrice | None:
    """Adds a price row effective now when the rates differ from the row in force; returns it (or None).

    Every rate not given is None (no rate of its own): a row is always the whole price, never a patch.
    """
    rates = Rates(
        input_per_1m=input_per_1m,
        output_per_1m=output_per_1m,
        cached_input_per_1m=cached_input_per_1m,
        cache_write_5m_per_1m=cache_write_5m_per_1m,
        cache_write_1h_per_1m=cache_write_1h_per_1m,
        long_context_threshold=long_context_threshold,
        long_input_per_1m=long_input_per_1m,
        long_output_per_1m=long_output_per_1m,
        long_cached_input_per_1m=long_cached_input_per_1m,
    )
    with transaction.atomic():
        Model.objects.select_for_update().filter(pk=model.pk).first()
        current = price_in_force(model)
        if current is not None and current.same_rates(rates):
            return None
        price = ModelPrice.objects.create(
            model=model,
            **{name: getattr(rates, name) for name in RATE_FIELDS},
            effective_from=timezone.now(),
            source=source,
            created_by=created_by,
        )
    catalog_invalidate()
    return price


@dataclass
class SeedReport:
    providers_created: int = 0
    models_created: int = 0
    prices_created: int = 0


@transaction.atomic
def catalog_seed() -> SeedReport:
    """Creates what is missing and nothing else, so an admin's later edits always survive a re-run."""
    report = SeedReport()
    providers: dict[str, Provider] = {}
    for spec in seed.PROVIDERS:
        provider, created = Provider.objects.get_or_create(name=spec["name"], defaults=spec)
        providers[provider.name] = provider
        report.providers_created += created
    for (
        prov,
        model_id,
        display,
        aliases,
        inp,
        cached,
        out,
        context,
        max_out,
        tools,
        vision,
        json_mode,
    ) in seed.MODELS:
        model, created = Model.objects.get_or_create(
            provider=providers[prov],
            model_id=model_id,
            defaults={
                "display_name": display,
                "aliases": aliases,
                "context_window": context,
                "max_output_tokens": max_out,
                "supports_tools": tools,
                "supports_vision": vision,
                "supports_json": json_mode,
            },
        )
        report.models_created += created
        if not model.prices.exists():
            ModelPrice.objects.create(
                model=model,
                input_per_1m=inp,
                cached_input_per_1m=cached,
                output_per_1m=out,
                **seed.extra_rates(prov, model_id, inp),
                source="seed",
            )
            report.prices_created += 1
    for prov, model_id, display, inp, max_input in seed.EMBEDDING_MODELS:
        model, created = Model.objects.get_or_create(
            provider=providers[prov],
            model_id=model_id,
            defaults={
                "display_name": display,
                "kind": Model.Kind.EMBEDDING,
                "context_window": max_input,
                "max_output_tokens": 0,
            },
        )
        report.models_created += created
        if not model.prices.exists():
            ModelPrice.objects.create(model=model, input_per_1m=inp, output_per_1m=Decimal(0), source="seed")
            report.prices_created += 1
    transaction.on_commit(catalog_invalidate)
    return report


@dataclass
class ImportReport:
    models_created: list[str] = field(default_factory=list)
    models_updated: list[str] = field(default_factory=list)
    prices_created: list[str] = field(default_factory=list)
    skipped: int = 0


def _per_million(value: Any) -> Decimal | None:
    if value is None:
        return None
    # Through str() so 2.5e-06 becomes exactly 2.50, not the binary float's neighbour.
    return (Decimal(str(value)) * PER_MILLION).quantize(Decimal("0.0000000001"))


def _imported_rates(provider: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A price map entry's rates as model_price_set keywords (USD per 1M tokens)."""
    input_per_1m = _per_million(entry["input_cost_per_token"]) or Decimal(0)
    write_5m = _per_million(entry.get("cache_creation_input_token_cost"))
    write_1h = _per_million(entry.get("cache_creation_input_token_cost_above_1hr"))
    if provider == "anthropic" and (write_5m is None or write_1h is None):
        # The map leaves these out for many Claude models; Anthropic prices every model's cache writes by
        # one rule (1.25x input for 5 minutes, 2x for 1 hour), so derive what is missing, for Anthropic only.
        derived_5m, derived_1h = seed.anthropic_cache_write_rates(input_per_1m)
        write_5m = derived_5m if write_5m is None else write_5m
        write_1h = derived_1h if write_1h is None else write_1h
    long_rates = {
        "long_input_per_1m": _per_million(entry.get("input_cost_per_token_above_200k_tokens")),
        "long_output_per_1m": _per_million(entry.get("output_cost_per_token_above_200k_tokens")),
        "long_cached_input_per_1m": _per_million(entry.get("cache_read_input_token_cost_above_200k_tokens")),
    }
    # cache_creation_input_token_cost_above_200k_tokens is not read: above the threshold the pricing scales
    # the write rates by long_input / input, as Anthropic prices them (1.25x and 2x the long input rate).
    has_long_tier = any(rate is not None for rate in long_rates.values())
    return {
        "input_per_1m": input_per_1m,
        "output_per_1m": _per_million(entry.get("output_cost_per_token")) or Decimal(0),
        "cached_input_per_1m": _per_million(entry.get("cache_read_input_token_cost")),
        "cache_write_5m_per_1m": write_5m,
        "cache_write_1h_per_1m": write_1h,
        "long_context_threshold": MAP_LONG_CONTEXT_THRESHOLD if has_long_tier else None,
        **long_rates,
    }


def _entries(price_map: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Chat entries of our four providers keyed by (provider, model id); unprefixed keys win over prefixed."""
    chosen: dict[tuple[str, str], tuple[bool, dict[str, Any]]] = {}
    for key, entry in price_map.items():
        if not isinstance(entry, dict) or entry.get("mode") != "chat":
            continue
        provider = IMPORT_PROVIDERS.get(str(entry.get("litellm_provider")))
        if provider is None or entry.get("input_cost_per_token") is None:
            continue
        model_id, prefixed = key, False
        for prefix in KEY_PREFIXES:
            if key.startswith(prefix):
                model_id, prefixed = key[len(prefix) :], True
        previous = chosen.get((provider, model_id))
        if previous is None or (previous[0] and not prefixed):
            chosen[(provider, model_id)] = (prefixed, entry)
    return {k: v[1] for k, v in chosen.items()}


# The community price map (LiteLLM's model_prices_and_context_window.json, MIT licence), a snapshot trimmed to
# the chat models of our four vendors: what `make run` offers a newcomer as today's models.
BUNDLED_PRICE_MAP = Path(__file__).resolve().parent / "data" / "price-map.json"


def catalog_import(
    *,
    price_map: dict[str, Any],
    activate_new: bool = False,
    activate_current: bool = False,
    today: date | None = None,
) -> ImportReport:
    """Adds or updates models and prices from a LiteLLM `model_prices_and_context_window.json` map.

    New models arrive inactive unless `activate_new`: a map of ~200 models should not silently widen
    what the optimized modes may pick. With `activate_current` (today's models, as `make run` imports them)
    every model of the map is active until its deprecation date and inactive from that day on. New prices
    become new effective-dated rows; re-running adds nothing.
    """
    day = today or timezone.now().date()
    report = ImportReport()
    providers = {p.name: p for p in Provider.objects.all()}
    for (provider_name, model_id), entry in sorted(_entries(price_map).items()):
        provider = providers.get(provider_name)
        if provider is None:
            report.skipped += 1
            continue
        deprecation = entry.get("deprecation_date")
        retire_on = date.fromisoformat(deprecation) if deprecation else None
        fields: dict[str, Any] = {
            "context_window": int(entry.get("max_input_tokens") or entry.get("max_tokens") or 0) or None,
            "max_output_tokens": int(entry.get("max_output_tokens") or 0) or None,
            "supports_tools": bool(entry.get("supports_function_calling", False)),
            "supports_vision": bool(entry.get("supports_vision", False)),
            "supports_json": bool(entry.get("supports_response_schema", False)),
            "deprecation_date": retire_on,
        }
        with transaction.atomic():
            model = Model.objects.filter(provider=provider, model_id=model_id).first()
            retired = retire_on is not None and retire_on <= day
            if model is None:
                if fields["context_window"] is None or fields["max_output_tokens"] is None:
                    report.skipped += 1
                    continue
                active = (activate_current and not retired) or (activate_new and not activate_current)
                model = Model.objects.create(
                    provider=provider, model_id=model_id, display_name=model_id, active=active, **fields
                )
                report.models_created.append(model_id)
            else:
                if activate_current:
                    fields["active"] = not retired
                changed = [
                    name
                    for name, value in fields.items()
                    if value is not None and getattr(model, name) != value
                ]
                for name in changed:
                    setattr(model, name, fields[name])
                if changed:
                    model.save(update_fields=[*changed, "updated_at"])
                    report.models_updated.append(model_id)
            price = model_price_set(model=model, **_imported_rates(provider_name, entry), source="import")
            if price is not None:
                report.prices_created.append(model_id)
    catalog_invalidate()
    return report


def catalog_import_bundled(*, today: date | None = None) -> ImportReport:
    """Today's models: the bundled price map, current models active, retired ones inactive (`make run`)."""
    return catalog_import(
        price_map=price_map_load(BUNDLED_PRICE_MAP.read_text(encoding="utf-8")),
        activate_current=True,
        today=today,
    )


def price_map_load(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("a price map is a JSON object keyed by model name")
    return data
