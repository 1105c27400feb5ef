"""The catalog the router ships with (running.md): prices (cached input, cache writes, long-context tiers),
output caps and capabilities."""

from __future__ import annotations

from decimal import ROUND_HALF_UP
from decimal import Decimal as D
from typing import Any

PROVIDERS = [
    {"name": "openai", "display_name": "OpenAI", "base_url": "https://api.openai.com/v1"},
    {"name": "anthropic", "display_name": "Anthropic", "base_url": "https://api.anthropic.com"},
    {
        "name": "google",
        "display_name": "Google Gemini",
        "base_url": "https://generativelanguage.googleapis.com",
    },
    {"name": "deepseek", "display_name": "DeepSeek", "base_url": "https://api.deepseek.com"},
]

# provider, model_id, display name, aliases, input, cached input, output ($/1M), context, max output,
# tools, vision, json
MODELS: list[tuple[str, str, str, list[str], D, D | None, D, int, int, bool, bool, bool]] = [
    ("openai", "gpt-4o", "GPT-4o", [], D("2.50"), D("1.25"), D("10.00"), 128000, 16384, True, True, True),
    (
        "openai",
        "gpt-4o-mini",
        "GPT-4o mini",
        [],
        D("0.15"),
        D("0.075"),
        D("0.60"),
        128000,
        16384,
        True,
        True,
        True,
    ),
    (
        "openai",
        "gpt-3.5-turbo",
        "GPT-3.5 Turbo",
        [],
        D("0.50"),
        None,
        D("1.50"),
        16385,
        4096,
        True,
        False,
        True,
    ),
    (
        "anthropic",
        "claude-opus-4-1-20250805",
        "Claude Opus 4.1",
        ["claude-opus-4.1", "claude-opus-4-1"],
        D("15.00"),
        D("1.50"),
        D("75.00"),
        200000,
        32000,
        True,
        True,
        True,
    ),
    (
        "anthropic",
        "claude-opus-4-20250514",
        "Claude Opus 4",
        ["claude-opus-4", "claude-opus-4-0"],
        D("15.00"),
        D("1.50"),
        D("75.00"),
        200000,
        32000,
        True,
        True,
        True,
    ),
    (
        "anthropic",
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        ["claude-sonnet-4.5", "claude-sonnet-4-5"],
        D("3.00"),
        D("0.30"),
        D("15.00"),
        200000,
        64000,
        True,
        True,
        True,
    ),
    (
        "anthropic",
        "claude-sonnet-4-20250514",
        "Claude Sonnet 4",
        ["claude-sonnet-4", "claude-sonnet-4-0"],
        D("3.00"),
        D("0.30"),
        D("15.00"),
        200000,
        64000,
        True,
        True,
        True,
    ),
    (
        "anthropic",
        "claude-3-5-haiku-20241022",
        "Claude Haiku 3.5",
        ["claude-haiku-3.5", "claude-3-5-haiku-latest"],
        D("0.80"),
        D("0.08"),
        D("4.00"),
        200000,
        8192,
        True,
        True,
        True,
    ),
    (
        "deepseek",
        "deepseek-chat",
        "DeepSeek Chat",
        [],
        D("0.28"),
        D("0.028"),
        D("0.42"),
        64000,
        8192,
        True,
        False,
        True,
    ),
    (
        "deepseek",
        "deepseek-reasoner",
        "DeepSeek Reasoner",
        [],
        D("0.56"),
        D("0.07"),
        D("1.68"),
        64000,
        32768,
        False,
        False,
        True,
    ),
    (
        "google",
        "gemini-2.5-pro",
        "Gemini 2.5 Pro",
        [],
        D("1.25"),
        D("0.125"),
        D("10.00"),
        1048576,
        65536,
        True,
        True,
        True,
    ),
    (
        "google",
        "gemini-2.5-flash",
        "Gemini 2.5 Flash",
        [],
        D("0.30"),
        D("0.03"),
        D("2.50"),
        1048576,
        65536,
        True,
        True,
        True,
    ),
    (
        "google",
        "gemini-2.5-flash-lite",
        "Gemini 2.5 Flash-Lite",
        [],
        D("0.10"),
        D("0.01"),
        D("0.40"),
        1048576,
        65536,
        True,
        True,
        True,
    ),
    (
        "google",
        "gemini-2.0-flash",
        "Gemini 2.0 Flash",
        [],
        D("0.10"),
        D("0.025"),
        D("0.40"),
        1048576,
        8192,
        True,
        True,
        True,
    ),
]

# Embedding models (kind "embedding"; ingress-wire-formats.md §4.4): provider, model_id, display name, input
# $/1M (embeddings have no output charge), the most tokens one input may have (their context window).
EMBEDDING_MODELS: list[tuple[str, str, str, D, int]] = [
    ("openai", "text-embedding-3-small", "Text Embedding 3 Small", D("0.02"), 8191),
    ("openai", "text-embedding-3-large", "Text Embedding 3 Large", D("0.13"), 8191),
    ("google", "gemini-embedding-001", "Gemini Embedding 001", D("0.15"), 2048),
]

# Anthropic prices prompt-cache writes from each model's input rate: 1.25x for the default 5-minute TTL and
# 2x for the 1-hour TTL (cache reads are the cached rate above).
ANTHROPIC_CACHE_WRITE_5M = D("1.25")
ANTHROPIC_CACHE_WRITE_1H = D("2")
RATE_PLACES = D("0.0000000001")  # a price row's ten decimal places

# Long-context tiers: above the threshold (prompt tokens) the whole request pays these rates. Sonnet 4 and
# 4.5 with the 1M-token context window: input 2x, output 1.5x, cache reads 2x (cache writes scale with the
# input rate); Gemini 2.5 Pro above 200k prompt tokens.
LONG_CONTEXT: dict[str, dict[str, Any]] = {
    "claude-sonnet-4-5-20250929": {
        "long_context_threshold": 200_000,
        "long_input_per_1m": D("6.00"),
        "long_output_per_1m": D("22.50"),
        "long_cached_input_per_1m": D("0.60"),
    },
    "claude-sonnet-4-20250514": {
        "long_context_threshold": 200_000,
        "long_input_per_1m": D("6.00"),
        "long_output_per_1m": D("22.50"),
        "long_cached_input_per_1m": D("0.60"),
    },
    "gemini-2.5-pro": {
        "long_context_threshold": 200_000,
        "long_input_per_1m": D("2.50"),
        "long_output_per_1m": D("15.00"),
        "long_cached_input_per_1m": D("0.25"),
    },
}


def anthropic_cache_write_rates(input_per_1m: D) -> tuple[D, D]:
    """(5-minute, 1-hour) cache-write rates per 1M tokens by Anthropic's rule, at a price row's scale."""
    return (
        (input_per_1m * ANTHROPIC_CACHE_WRITE_5M).quantize(RATE_PLACES, rounding=ROUND_HALF_UP),
        (input_per_1m * ANTHROPIC_CACHE_WRITE_1H).quantize(RATE_PLACES, rounding=ROUND_HALF_UP),
    )


def extra_rates(provider: str, model_id: str, input_per_1m: D) -> dict[str, Any]:
    """A seeded model's rates beyond input, cached input and output (ModelPrice field names)."""
    rates: dict[str, Any] = dict(LONG_CONTEXT.get(model_id, {}))
    if provider == "anthropic":
        write_5m, write_1h = anthropic_cache_write_rates(input_per_1m)
        rates.update(cache_write_5m_per_1m=write_5m, cache_write_1h_per_1m=write_1h)
    return rates
