"""The plan's prompt estimates: counted when first asked for, once per tokenizer, and the same numbers as
counting each model on its own."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from providers import tokens
from providers.catalog import catalog_get, catalog_invalidate
from routing.pipeline import plan
from routing.pipeline.plan import APPROX_PROMPT_MARGIN, PromptCounts, completion_plan
from routing.pipeline.types import Caller, CompletionInput

pytestmark = pytest.mark.django_db

LONG = [
    {"role": "system", "content": "You review code. " * 40},
    {"role": "user", "content": "Explain what this function does: def f(x): return x * 2"},
]
CLAUDE = "claude-sonnet-4-5-20250929"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Looks a word up.",
            "parameters": {"type": "object", "properties": {"word": {"type": "string"}}},
        },
    }
]


def _own_count(messages: list[dict[str, Any]], model: Any) -> int:
    """Each model counted on its own, with no sharing: what the plan's numbers must equal."""
    counted = tokens.count_message_tokens(messages, model.model_id, model.provider, tools=TOOLS)
    if counted.is_exact_tokenizer:
        return counted.tokens
    return int(Decimal(counted.tokens) * APPROX_PROMPT_MARGIN) + 1


@pytest.fixture
def bases_counted(monkeypatch) -> list[tuple[str, str]]:
    """The encodings the messages were read with, one entry each time they were read."""
    seen: list[tuple[str, str]] = []
    real = tokens._messages_base

    def spy(counter: Any, messages: Any) -> int:
        seen.append(counter.base_key)
        return real(counter, messages)

    monkeypatch.setattr(tokens, "_messages_base", spy)
    return seen


def test_every_models_count_is_what_counting_it_alone_gives(catalog) -> None:
    current = catalog_get(fresh=True)
    counts = PromptCounts(CompletionInput(messages=LONG, tools=TOOLS), current)
    chat = [m for m in current.models if m.kind == "chat"]
    assert {m.provider for m in chat} >= {"openai", "anthropic", "google", "deepseek"}
    for model in chat:
        assert counts[model.model_id] == counts.get(model.model_id) == _own_count(LONG, model), model.model_id
    assert counts.largest() == (max(_own_count(LONG, m) for m in chat), None)


def test_an_optimized_route_reads_the_prompt_once_per_encoding(catalog, bases_counted) -> None:
    current = catalog_get(fresh=True)
    chat = [m for m in current.models if m.kind == "chat"]
    PromptCounts(CompletionInput(messages=LONG), current).largest()
    assert len(chat) > 4
    # Before, every catalog model read it again (once per OpenAI model and once per other vendor).
    assert len(bases_counted) == len(set(bases_counted)) <= 2


def test_other_kinds_are_never_counted(catalog) -> None:
    current = catalog_get(fresh=True)
    embedding = next(m for m in current.models if m.kind == "embedding")
    counts = PromptCounts(CompletionInput(messages=LONG), current)
    assert embedding.model_id not in counts
    assert counts.get(embedding.model_id, -1) == -1
    with pytest.raises(KeyError):
        counts[embedding.model_id]


def test_a_manual_request_counts_only_its_own_model(settings, catalog, monkeypatch) -> None:
    settings.PROVIDER_API_KEYS = {**settings.PROVIDER_API_KEYS, "openai": "sk-test", "anthropic": "sk-test"}
    settings.ROUTER_CATALOG_TTL_S = 3600  # the plan reads this snapshot (its own load runs on another
    catalog_invalidate()  # connection, which would not see the test's rows)
    catalog_get(fresh=True)
    counted: list[str] = []
    real = plan.count_message_tokens

    def spy(messages: Any, model_id: str, provider: str, **kwargs: Any) -> tokens.TokenCount:
        counted.append(model_id)
        return real(messages, model_id, provider, **kwargs)

    monkeypatch.setattr(plan, "count_message_tokens", spy)
    run = async_to_sync(completion_plan)(
        caller=Caller(user_id=1),
        inp=CompletionInput(model="gpt-4o-mini", messages=LONG),
        request_id="req_counts",
    )
    assert counted == ["gpt-4o-mini"]
    assert run.held_prompt(run.model("gpt-4o-mini")) >= run.prompt_tokens.get("gpt-4o-mini") > 0
    # Another model is counted when it is asked about (a fallback being tried), not before.
    assert run.prompt_tokens.get(CLAUDE) > 0
    assert counted == ["gpt-4o-mini", CLAUDE]
