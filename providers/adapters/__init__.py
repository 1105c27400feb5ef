"""Adapter registry: one stateless adapter per provider name, looked up with get_adapter()."""

from __future__ import annotations

from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import Adapter
from providers.adapters.deepseek import DeepSeekAdapter
from providers.adapters.gemini import GeminiAdapter
from providers.adapters.openai import OpenAIAdapter

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
