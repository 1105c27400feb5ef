"""Adapter registry: one stateless adapter per provider name (get_adapter), and per embeddings API."""

from __future__ import annotations

from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import Adapter, EmbeddingAdapter
from providers.adapters.deepseek import DeepSeekAdapter
from providers.adapters.gemini import GeminiAdapter
from providers.adapters.gemini_embeddings import GeminiEmbeddingAdapter
from providers.adapters.openai import OpenAIAdapter
from providers.adapters.openai_embeddings import OpenAIEmbeddingAdapter

ADAPTERS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (OpenAIAdapter(), AnthropicAdapter(), GeminiAdapter(), DeepSeekAdapter())
}


def get_adapter(provider_name: str) -> Adapter:
    """The adapter for "openai", "anthropic", "google" or "deepseek"; KeyError for any other name."""
    try:
        return ADAPTERS[provider_name]
    except KeyError:
        raise KeyError(f"no adapter for provider {provider_name!r}") from None


# Only these vendors have an embeddings API (Anthropic and DeepSeek have none).
EMBEDDING_ADAPTERS: dict[str, EmbeddingAdapter] = {
    adapter.name: adapter for adapter in (OpenAIEmbeddingAdapter(), GeminiEmbeddingAdapter())
}


def get_embedding_adapter(provider_name: str) -> EmbeddingAdapter | None:
    """The embeddings adapter for "openai" or "google"; None for a provider with no embeddings API."""
    return EMBEDDING_ADAPTERS.get(provider_name)
