"""JsonBodySerializer skips the fields a JSON body leaves out, and answers exactly as DRF's own loop does."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import QueryDict
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from config.serializers import JsonBodySerializer
from routing.api.serializers import CompletionInputSerializer

USER = {"role": "user", "content": "hi"}
BODIES: list[Any] = [
    {"model": "gpt-4o-mini", "messages": [USER]},
    {"model": "gpt-4o-mini", "messages": [USER], "max_tokens": 64, "stream": True, "unknown": 1},
    {"model": "gpt-4o-mini", "messages": [USER, {"role": "assistant", "content": None, "tool_calls": []}]},
    {"messages": [USER]},  # manual mode needs a model
    {"mode": "cheapest", "messages": [USER], "stop": "END", "seed": None, "user": "u1"},
    {"model": "m", "messages": [USER], "temperature": "0.5", "n": 2, "stop": [1]},
    {"model": "m", "messages": [{"role": "robot"}], "tools": [{"type": "function"}], "cache": "yes"},
    {"model": "m", "messages": [], "max_cost": -1, "fallbacks": None},
    {"model": 7},
    {},
    [],
    "text",
]


def _answer(serializer: serializers.Serializer, body: Any) -> tuple[str, Any]:
    try:
        return "valid", serializer.run_validation(body)
    except ValidationError as exc:
        return "invalid", exc.detail


@pytest.mark.parametrize("body", BODIES)
def test_it_answers_as_drfs_own_loop(body, monkeypatch):
    ours = _answer(CompletionInputSerializer(), body)
    monkeypatch.setattr(JsonBodySerializer, "to_internal_value", serializers.Serializer.to_internal_value)
    assert ours == _answer(CompletionInputSerializer(), body)


def _visited(monkeypatch, serializer: serializers.Serializer) -> list[str]:
    visited: list[str] = []
    for name, field in serializer.fields.items():
        original = field.run_validation

        def spy(data: Any = serializers.empty, _name: str = name, _original: Any = original) -> Any:
            visited.append(_name)
            return _original(data)

        monkeypatch.setattr(field, "run_validation", spy)
    return visited


def test_a_field_the_body_leaves_out_is_not_visited_unless_required_or_defaulted(monkeypatch):
    serializer = CompletionInputSerializer()
    visited = _visited(monkeypatch, serializer)
    data = serializer.run_validation({"model": "gpt-4o-mini", "messages": [USER], "seed": 3})
    assert data["seed"] == 3 and data["stream"] is False and data["mode"] == "manual"
    assert "seed" in visited and "model" in visited and "messages" in visited  # given
    assert {"mode", "fallbacks", "stream", "cache", "budget_policy"} <= set(visited)  # defaulted
    assert not {"temperature", "top_p", "stop", "tools", "user", "max_tokens"} & set(visited)  # left out


class _Form(JsonBodySerializer):
    name = serializers.CharField(required=False)
    size = serializers.IntegerField(required=False)


def test_form_data_and_partial_updates_take_drfs_own_loop(monkeypatch):
    form = _Form()
    visited = _visited(monkeypatch, form)
    assert form.run_validation(QueryDict("name=a")) == {"name": "a"}
    assert visited == ["name", "size"]
    partial = _Form(partial=True)
    visited = _visited(monkeypatch, partial)
    assert partial.run_validation({"name": "a"}) == {"name": "a"}
    assert visited == ["name", "size"]
