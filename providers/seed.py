"""The catalog the router ships with (running.md), with cached prices, output caps and capabilities."""

from __future__ import annotations

from decimal import Decimal as D

PROVIDERS = [
    {"name": "openai", "display_name": "OpenAI", "base_url": "https://api.openai.com/v1"},
    {"name": "anthropic", "display_name": "Anthropic", "base_url": "https://api.anthropic.com"},
    {"name": "google", "display_name": "Google Gemini", "base_url": "https://generativelanguage.googleapis.com"},
    {"name": "deepseek", "display_name": "DeepSeek", "base_url": "https://api.deepseek.com"},
]

# provider, model_id, display name, aliases, input, cached input, output ($/1M), context, max output,
# tools, vision, json
MODELS: list[tuple[str, str, str, list[str], D, D | None, D, int, int, bool, bool, bool]] = [
    ("openai", "gpt-4o", "GPT-4o", [], D("2.50"), D("1.25"), D("10.00"), 128000, 16384, True, True, True),
    ("openai", "gpt-4o-mini", "GPT-4o mini", [], D("0.15"), D("0.075"), D("0.60"), 128000, 16384, True, True, True),
    ("openai", "gpt-3.5-turbo", "GPT-3.5 Turbo", [], D("0.50"), None, D("1.50"), 16385, 4096, True, False, True),
    ("anthropic", "claude-opus-4-1-20250805", "Claude Opus 4.1", ["claude-opus-4.1", "claude-opus-4-1"],
     D("15.00"), D("1.50"), D("75.00"), 200000, 32000, True, True, True),
    ("anthropic", "claude-opus-4-20250514", "Claude Opus 4", ["claude-opus-4", "claude-opus-4-0"],
     D("15.00"), D("1.50"), D("75.00"), 200000, 32000, True, True, True),
    ("anthropic", "claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", ["claude-sonnet-4.5", "claude-sonnet-4-5"],
     D("3.00"), D("0.30"), D("15.00"), 200000, 64000, True, True, True),
    ("anthropic", "claude-sonnet-4-20250514", "Claude Sonnet 4", ["claude-sonnet-4", "claude-sonnet-4-0"],
     D("3.00"), D("0.30"), D("15.00"), 200000, 64000, True, True, True),
    ("anthropic", "claude-3-5-haiku-20241022", "Claude Haiku 3.5", ["claude-haiku-3.5", "claude-3-5-haiku-latest"],
     D("0.80"), D("0.08"), D("4.00"), 200000, 8192, True, True, True),
    ("deepseek", "deepseek-chat", "DeepSeek Chat", [], D("0.28"), D("0.028"), D("0.42"), 64000, 8192,
     True, False, True),
    ("deepseek", "deepseek-reasoner", "DeepSeek Reasoner", [], D("0.56"), D("0.07"), D("1.68"), 64000, 32768,
     False, False, True),
    ("google", "gemini-2.5-pro", "Gemini 2.5 Pro", [], D("1.25"), D("0.125"), D("10.00"), 1048576, 65536,
     True, True, True),
    ("google", "gemini-2.5-flash", "Gemini 2.5 Flash", [], D("0.30"), D("0.03"), D("2.50"), 1048576, 65536,
     True, True, True),
    ("google", "gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", [], D("0.10"), D("0.01"), D("0.40"), 1048576,
     65536, True, True, True),
    ("google", "gemini-2.0-flash", "Gemini 2.0 Flash", [], D("0.10"), D("0.025"), D("0.40"), 1048576, 8192,
     True, True, True),
]
