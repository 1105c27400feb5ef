"""Reads of the catalog: an in-process snapshot of models with the price in force, refreshed every few seconds."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.db.models import Prefetch
from django.utils import timezone

from providers.adapters.base import ProviderConfig
from providers.adapters.redaction import secrets_register
from providers.models import Model, ModelPrice, Provider
from providers.pricing import Rates

DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "google": "https://generativelanguage.googleapis.com",
    "deepseek": "https://api.deepseek.com",
}


@dataclass(frozen=True, slots=True)
class CatalogModel:
    pk: int
    model_id: str
    display_name: str
    provider: str
    provider_active: bool
    provider_configured: bool
    aliases: tuple[str, ...]
    context_window: int
    max_output_tokens: int
    supports_tools: bool
    supports_vision: bool
    supports_json: bool
    active: bool
    deprecation_date: date | None
    price_id: int | None
    rates: Rates | None
    kind: str = "chat"  # "chat" | "embedding": which doors the model serves

    @property
    def is_embedding(self) -> bool:
        return self.kind == "embedding"


@dataclass(frozen=True, slots=True)
class Catalog:
    models: tuple[CatalogModel, ...]
    providers: dict[str, ProviderConfig]
    loaded_at: float

    def by_name(self, name: str) -> CatalogModel | None:
        for model in self.models:
            if model.model_id == name:
                return model
        for model in self.models:
            if name in model.aliases:
                return model
        return None


_snapshot: Catalog | None = None

# For the 400 when a request names a model of the other kind.
A_MODEL_OF_KIND = {"chat": "a chat model", "embedding": "an embedding model"}
DOORS_OF_KIND = {
    "chat": "/v1/chat/completions, /v1/messages or /v1/responses",
    "embedding": "/v1/embeddings",
}


def wrong_kind_message(name: str, kind: str, wanted: str) -> str:
    """The 400's message when a request names a model of the other kind (every path that resolves names)."""
    is_a, not_a = (A_MODEL_OF_KIND.get(k, f"a {k} model") for k in (kind, wanted))
    return f"Model '{name}' is {is_a}, not {not_a}: use it with {DOORS_OF_KIND.get(kind, 'another door')}"


def provider_config_for(provider: Provider) -> ProviderConfig:
    base_url = settings.PROVIDER_BASE_URLS.get(provider.name) or provider.base_url
    return ProviderConfig(
        name=provider.name,
        base_url=base_url.rstrip("/"),
        api_key=settings.PROVIDER_API_KEYS.get(provider.name),
        timeout_s=settings.ROUTER_UPSTREAM_TIMEOUT_S,
    )


def _is_configured(config: ProviderConfig) -> bool:
    """A provider needs an API key unless its base URL points somewhere that needs none (a proxy, the fake)."""
    return bool(config.api_key) or config.base_url != DEFAULT_BASE_URLS.get(config.name)


def price_in_force(model: Model, at: object = None) -> ModelPrice | None:
    moment = at or timezone.now()
    return model.prices.filter(effective_from__lte=moment).order_by("-effective_from", "-id").first()


def _load() -> Catalog:
    now = timezone.now()
    prices = ModelPrice.objects.filter(effective_from__lte=now).order_by("-effective_from", "-id")
    models = Model.objects.select_related("provider").prefetch_related(Prefetch("prices", queryset=prices))
    providers = {p.name: provider_config_for(p) for p in Provider.objects.all()}
    # Every key this snapshot can send (and every one configured, with a provider row or not), collected once
    # per load so that redacting an error costs a few substring checks.
    secrets_register([*settings.PROVIDER_API_KEYS.values(), *(c.api_key for c in providers.values())])
    entries = []
    for model in models:
        price = next(iter(model.prices.all()), None)
        config = providers.get(model.provider.name)
        entries.append(
            CatalogModel(
                pk=model.pk,
                model_id=model.model_id,
                display_name=model.display_name,
                provider=model.provider.name,
                provider_active=model.provider.active,
                provider_configured=config is not None and _is_configured(config),
                aliases=tuple(model.aliases or ()),
                context_window=model.context_window,
                max_output_tokens=model.max_output_tokens,
                supports_tools=model.supports_tools,
                supports_vision=model.supports_vision,
                supports_json=model.supports_json,
                active=model.active,
                deprecation_date=model.deprecation_date,
                price_id=price.pk if price else None,
                rates=price.rates if price else None,
                kind=model.kind,
            )
        )
    return Catalog(models=tuple(entries), providers=providers, loaded_at=time.monotonic())


def catalog_get(*, fresh: bool = False) -> Catalog:
    global _snapshot
    snapshot = _snapshot
    if fresh or snapshot is None or time.monotonic() - snapshot.loaded_at > settings.ROUTER_CATALOG_TTL_S:
        snapshot = _snapshot = _load()
    return snapshot


async def acatalog_get() -> Catalog:
    snapshot = _snapshot
    if snapshot is not None and time.monotonic() - snapshot.loaded_at <= settings.ROUTER_CATALOG_TTL_S:
        return snapshot
    return await sync_to_async(_catalog_get_released, thread_sensitive=False)()


def _catalog_get_released() -> Catalog:
    """Loads from async code and hands the connection back to the pool at once (not held by the request)."""
    try:
        return catalog_get()
    finally:
        close_old_connections()


def catalog_invalidate() -> None:
    global _snapshot
    _snapshot = None


def model_list(*, active_only: bool = True) -> list[Model]:
    qs = Model.objects.select_related("provider").order_by("provider__name", "model_id")
    if active_only:
        qs = qs.filter(active=True, provider__active=True)
    return list(qs)
