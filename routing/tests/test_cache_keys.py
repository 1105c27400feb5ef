"""Response-cache keys: a canonical form of exactly what changes the answer, scoped per user or group."""

from __future__ import annotations

from typing import Any

import pytest

from routing.cache import KEY_FIELDS, cache_key, cache_scope
from routing.pipeline.types import CompletionInput, EmbeddingParams

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]
PARAMS: dict[str, Any] = {
    "messages": MESSAGES,
    "temperature": 0.0,
    "top_p": 1.0,
    "max_tokens": 100,
    "stop": ["\n\n"],
    "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
    "tool_choice": "auto",
    "response_format": {"type": "json_object"},
    "seed": 7,
    "input": ["a cat", "a dog"],
    "dimensions": 256,
}
# A different value for every key field (each differs from PARAMS and from "absent").
CHANGED: dict[str, Any] = {
    "messages": [*MESSAGES[:1], {"role": "user", "content": "Capital of Spain?"}],
    "temperature": 0.7,
    "top_p": 0.9,
    "max_tokens": 101,
    "stop": ["END"],
    "tools": [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}],
    "tool_choice": "none",
    "response_format": {"type": "text"},
    "seed": 8,
    "input": ["a cat", "a bird"],
    "dimensions": 512,
}
SCOPE = cache_scope(user_id=1, cache_group="")


def key(params: dict[str, Any], *, model_id: str = "gpt-4o-mini", scope: str = SCOPE) -> str:
    return cache_key(scope=scope, model_id=model_id, params=params)


def test_the_same_request_gives_the_same_key():
    assert key(PARAMS) == key(dict(PARAMS))


def test_field_order_is_irrelevant_at_every_level():
    reordered = dict(reversed(list(PARAMS.items())))
    reordered["messages"] = [dict(reversed(list(m.items()))) for m in MESSAGES]
    reordered["tools"] = [
        {"function": {"parameters": {"type": "object"}, "name": "lookup"}, "type": "function"}
    ]
    assert key(reordered) == key(PARAMS)


def test_the_changed_values_cover_every_key_field():
    assert set(CHANGED) == set(KEY_FIELDS) == set(PARAMS)


@pytest.mark.parametrize("field", KEY_FIELDS)
def test_each_key_field_changes_the_key(field):
    assert key({**PARAMS, field: CHANGED[field]}) != key(PARAMS)


@pytest.mark.parametrize("field", [f for f in KEY_FIELDS if f != "messages"])
def test_leaving_a_key_field_out_changes_the_key(field):
    without = {k: v for k, v in PARAMS.items() if k != field}
    assert key(without) != key(PARAMS)


def test_an_absent_field_and_an_explicit_null_are_the_same_request():
    assert key({"messages": MESSAGES}) == key({"messages": MESSAGES, "temperature": None, "seed": None})


def test_temperature_zero_and_point_seven_are_different_entries():
    assert key({**PARAMS, "temperature": 0.0}) != key({**PARAMS, "temperature": 0.7})


def test_message_order_matters():
    assert key({**PARAMS, "messages": list(reversed(MESSAGES))}) != key(PARAMS)


@pytest.mark.parametrize(
    "extra",
    [
        {"stream": True},
        {"stream": False},
        {"user": "end-user-42"},
        {"stream_options": {"include_usage": True}},
        {"mode": "cost-optimized", "fallbacks": ["gpt-4o"], "max_cost": "0.01", "expected_output_tokens": 10},
        {"cache": True, "budget_policy": "fit"},
    ],
)
def test_stream_user_and_router_fields_do_not_change_the_key(extra):
    assert key({**PARAMS, **extra}) == key(PARAMS)


def test_the_model_is_part_of_the_key():
    assert key(PARAMS, model_id="gpt-4o") != key(PARAMS, model_id="gpt-4o-mini")


def test_users_are_kept_apart_unless_an_admin_groups_them():
    alice, bob = cache_scope(user_id=1, cache_group=""), cache_scope(user_id=2, cache_group="")
    assert alice == "user:1" and bob == "user:2"
    assert key(PARAMS, scope=alice) != key(PARAMS, scope=bob)
    team_alice = cache_scope(user_id=1, cache_group="team")
    team_bob = cache_scope(user_id=2, cache_group="team")
    assert team_alice == team_bob == "group:team"
    assert key(PARAMS, scope=team_alice) == key(PARAMS, scope=team_bob)
    assert key(PARAMS, scope=cache_scope(user_id=1, cache_group="other")) != key(PARAMS, scope=team_alice)


def test_a_group_scope_never_collides_with_a_user_scope():
    assert cache_scope(user_id=5, cache_group="5") != cache_scope(user_id=5, cache_group="")


def test_keys_are_namespaced_and_do_not_contain_the_prompt():
    made = key(PARAMS)
    assert made.startswith("router:cache:user:1:")
    assert "France" not in made


def _embeddings(**params: Any) -> dict[str, Any]:
    embedding = EmbeddingParams(**{"inputs": ["a cat", "a dog"], "dimensions": 8, **params})
    return CompletionInput(messages=[], door="embeddings", embedding=embedding).cache_params()


def test_an_embeddings_key_is_its_inputs_and_dimensions_not_how_the_vectors_are_encoded():
    assert key(_embeddings(encoding_format="float")) == key(_embeddings(encoding_format="base64"))
    assert key(_embeddings(user="someone")) == key(_embeddings())
    assert key(_embeddings(dimensions=16)) != key(_embeddings())
    assert key(_embeddings(dimensions=None)) != key(_embeddings())
    assert key(_embeddings(inputs=["a dog", "a cat"])) != key(_embeddings())
    assert key(_embeddings(inputs=[[1, 2]])) != key(_embeddings(inputs=[[1, 3]]))


def test_an_embeddings_key_never_meets_a_chat_key():
    chat = CompletionInput(messages=[{"role": "user", "content": "a cat"}]).cache_params()
    assert key(_embeddings(inputs=["a cat"], dimensions=None)) != key(chat)
