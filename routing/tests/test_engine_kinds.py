"""Routing engine and model kinds: a request is only ever planned on models of its own kind."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from providers.pricing import Rates
from routing.engine import NoCandidates, WrongKind, plan
from routing.engine_types import Candidate, Needs, RejectReason

D = Decimal
TODAY = date(2025, 10, 16)


def make(model_id: str, **overrides: Any) -> Candidate:
    fields: dict[str, Any] = {
        "model_id": model_id,
        "provider": "openai",
        "context_window": 128_000,
        "max_output_tokens": 16_384,
        "rates": Rates(input_per_1m=D("1"), output_per_1m=D("2")),
    }
    return Candidate(**{**fields, **overrides})


def embedding(model_id: str, price: str, *, window: int = 8191, provider: str = "openai") -> Candidate:
    return make(
        model_id,
        provider=provider,
        kind="embedding",
        context_window=window,
        max_output_tokens=0,
        rates=Rates(input_per_1m=D(price), output_per_1m=D(0)),
    )


CHAT = make("gpt-4o-mini", rates=Rates(input_per_1m=D("0.15"), output_per_1m=D("0.60")))
SMALL = embedding("text-embedding-3-small", "0.02")
LARGE = embedding("text-embedding-3-large", "0.13")
GEMINI = embedding("gemini-embedding-001", "0.15", window=2048, provider="google")
POOL = [CHAT, SMALL, LARGE, GEMINI]


def chat_needs(**overrides: Any) -> Needs:
    return Needs(**{"prompt_tokens": 1_000, "today": TODAY, **overrides})


def embedding_needs(**overrides: Any) -> Needs:
    fields = {"prompt_tokens": 30_000, "fit_tokens": 1_000, "expected_output_tokens": 0, "kind": "embedding"}
    return Needs(**{"today": TODAY, **fields, **overrides})


def test_cost_optimized_chat_never_picks_an_embedding_model_however_cheap():
    chosen = plan(mode="manual", model="auto", candidates=POOL, needs=chat_needs())
    assert [r.candidate.model_id for r in chosen.ranked] == ["gpt-4o-mini"]
    assert chosen.considered == 1


def test_cost_optimized_embeddings_rank_only_embedding_models_cheapest_first():
    chosen = plan(mode="cost-optimized", model=None, candidates=POOL, needs=embedding_needs())
    assert [r.candidate.model_id for r in chosen.ranked] == [
        "text-embedding-3-small",
        "text-embedding-3-large",
        "gemini-embedding-001",
    ]
    assert chosen.ranked[0].estimated_cost == D("0.0006")  # 30,000 tokens at $0.02 per 1M, nothing written


@pytest.mark.parametrize(
    ("model", "needs", "kind", "wanted"),
    [
        ("text-embedding-3-small", chat_needs(), "embedding", "chat"),
        ("gpt-4o-mini", embedding_needs(), "chat", "embedding"),
    ],
)
def test_naming_a_model_of_the_other_kind_is_wrong_kind(model, needs, kind, wanted):
    with pytest.raises(WrongKind) as raised:
        plan(mode="manual", model=model, candidates=POOL, needs=needs)
    assert (raised.value.name, raised.value.kind, raised.value.wanted) == (model, kind, wanted)


def test_a_fallback_or_a_listed_model_of_the_other_kind_is_wrong_kind_too():
    with pytest.raises(WrongKind):
        plan(
            mode="manual",
            model="gpt-4o-mini",
            candidates=POOL,
            needs=chat_needs(),
            fallbacks=["text-embedding-3-small"],
        )
    with pytest.raises(WrongKind):
        plan(
            mode="cost-optimized",
            model=None,
            candidates=POOL,
            needs=chat_needs(),
            models=["gpt-4o-mini", "gemini-embedding-001"],
        )


def test_embeddings_fit_each_input_not_their_sum():
    # 30,000 tokens in all, the longest input 1,000: fits an 8,191-token window.
    chosen = plan(mode="manual", model="text-embedding-3-small", candidates=POOL, needs=embedding_needs())
    assert [r.candidate.model_id for r in chosen.ranked] == ["text-embedding-3-small"]


def test_an_input_longer_than_the_window_skips_the_model_or_is_context_exceeded():
    long_input = embedding_needs(fit_tokens=3_000)  # above Gemini's 2,048, within OpenAI's 8,191
    chosen = plan(
        mode="manual",
        model="gemini-embedding-001",
        candidates=POOL,
        needs=long_input,
        fallbacks=["text-embedding-3-small"],
    )
    assert [r.candidate.model_id for r in chosen.ranked] == ["text-embedding-3-small"]
    assert chosen.rejections[0].reason is RejectReason.CONTEXT_TOO_SMALL
    with pytest.raises(NoCandidates) as raised:
        plan(mode="manual", model="gemini-embedding-001", candidates=POOL, needs=long_input)
    assert raised.value.context_exceeded
