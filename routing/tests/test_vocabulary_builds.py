"""A tokenizer vocabulary is built off the event loop on its first use (~0.2 s for cl100k_base, which would
otherwise stall every request and stream in flight), once, and only when a request may count with it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import tiktoken
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from config.db import close_pools
from providers import token_encodings, tokens
from providers.catalog import catalog_get, catalog_invalidate
from routing.pipeline.plan import completion_plan
from routing.pipeline.types import Caller, CompletionInput

pytestmark = pytest.mark.django_db(transaction=True)

LONG = [
    {"role": "system", "content": "You review code. " * 40},
    {"role": "user", "content": "Explain what this function does: def f(x): return x * 2"},
]


@pytest.fixture
def builds(settings, catalog, monkeypatch) -> Iterator[list[tuple[str, threading.Thread]]]:
    """Every vocabulary built (tiktoken.Encoding made), with the thread it was built in; none built yet."""
    settings.PROVIDER_API_KEYS = {**settings.PROVIDER_API_KEYS, "openai": "sk-test"}
    settings.ROUTER_CATALOG_TTL_S = 3600
    catalog_invalidate()
    catalog_get(fresh=True)
    seen: list[tuple[str, threading.Thread]] = []
    real = tiktoken.Encoding

    def spy(*args: Any, **kwargs: Any) -> tiktoken.Encoding:
        seen.append((kwargs["name"], threading.current_thread()))
        return real(*args, **kwargs)

    monkeypatch.setattr(tiktoken, "Encoding", spy)
    monkeypatch.setattr(token_encodings, "_ready", set())
    token_encodings.get_encoding.cache_clear()
    yield seen
    token_encodings.get_encoding.cache_clear()  # none of the encodings the spy made outlives the test


def _planned(model: str) -> tuple[threading.Thread, Any]:
    async def plan_it() -> tuple[threading.Thread, Any]:
        loop_thread = threading.current_thread()
        run = await completion_plan(
            caller=Caller(user_id=1), inp=CompletionInput(model=model, messages=LONG), request_id="req_vocab"
        )
        return loop_thread, run

    return async_to_sync(plan_it)()


def test_a_first_use_builds_its_vocabulary_off_the_event_loop(builds) -> None:
    loop_thread, run = _planned("gpt-3.5-turbo")  # cl100k_base
    assert [name for name, _ in builds] == [token_encodings.CL100K_BASE]
    assert builds[0][1] is not loop_thread  # a worker thread: the loop went on serving meanwhile (~0.2 s)
    assert run.prompt_tokens.get("gpt-3.5-turbo") == _own_count_plain("gpt-3.5-turbo")
    _planned("gpt-3.5-turbo")
    assert len(builds) == 1  # built once


def test_a_request_readies_only_the_vocabularies_it_may_count_with(builds) -> None:
    loop_thread, _ = _planned("gpt-4o-mini")  # gpt-3.5-turbo (cl100k_base) is in the catalog, not asked for
    assert [(name, thread is loop_thread) for name, thread in builds] == [(token_encodings.O200K_BASE, False)]


def test_concurrent_first_uses_build_once(builds) -> None:
    async def both() -> None:
        await asyncio.gather(
            *(token_encodings.encodings_ready([token_encodings.CL100K_BASE]) for _ in range(3))
        )

    async_to_sync(both)()
    assert [name for name, _ in builds] == [token_encodings.CL100K_BASE]


def _own_count_plain(model_id: str, messages: list[dict[str, Any]] = LONG) -> int:
    return tokens.count_message_tokens(messages, model_id, "openai").tokens


async def test_count_tokens_builds_a_first_vocabulary_off_the_event_loop(builds, alice_key) -> None:
    loop_thread = threading.current_thread()
    try:
        response = await AsyncClient().post(
            "/v1/messages/count_tokens",
            {"model": "gpt-3.5-turbo", "messages": LONG[1:]},
            content_type="application/json",
            headers={"x-api-key": alice_key, "anthropic-version": "2023-06-01"},
        )
    finally:
        await close_pools()
    assert response.status_code == 200, response.content
    assert json.loads(response.content)["input_tokens"] == _own_count_plain("gpt-3.5-turbo", LONG[1:])
    assert [(name, thread is loop_thread) for name, thread in builds] == [
        (token_encodings.CL100K_BASE, False)
    ]
