"""Anthropic's usage object (response, message_start and message_delta) as a Usage in OpenAI's meaning."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.adapters.base import Usage
from providers.adapters.common import int_of


def parse_usage(raw: Mapping[str, Any]) -> Usage:
    """`input_tokens` excludes cache reads and writes; OpenAI's prompt_tokens includes both.

    Cache writes are `cache_creation_input_tokens`, split by TTL in `cache_creation`
    (`ephemeral_5m_input_tokens`, `ephemeral_1h_input_tokens`), since the two are priced differently. Without
    the split every write is a 5-minute one (the default TTL); without the total, the split's sum is it.
    """
    cache_read = int_of(raw.get("cache_read_input_tokens"))
    split = raw.get("cache_creation")
    split = split if isinstance(split, Mapping) else {}
    written_1h = int_of(split.get("ephemeral_1h_input_tokens"))
    if isinstance(raw.get("cache_creation_input_tokens"), int):
        cache_write = int_of(raw.get("cache_creation_input_tokens"))
    else:
        cache_write = int_of(split.get("ephemeral_5m_input_tokens")) + written_1h
    details = raw.get("output_tokens_details") or {}
    return Usage(
        prompt_tokens=int_of(raw.get("input_tokens")) + cache_read + cache_write,
        completion_tokens=int_of(raw.get("output_tokens")),
        cached_tokens=cache_read,
        reasoning_tokens=int_of(details.get("thinking_tokens") or details.get("reasoning_tokens")),
        cache_write_tokens=cache_write,
        # A split that claims more 1-hour writes than writes in all is priced as all 1-hour: never more
        # 1-hour tokens than written ones, whatever the vendor sends.
        cache_write_1h_tokens=max(0, min(written_1h, cache_write)),
    )
