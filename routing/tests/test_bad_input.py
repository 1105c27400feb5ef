"""Bad input to /v1/chat/completions on a live gateway: 400 or 413 naming the field, and nothing written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.conf import settings

from budgets.models import Budget, Reservation
from routing.models import Attempt, GatewayRequest

pytestmark = pytest.mark.e2e
HELLO = [{"role": "user", "content": "What is the capital of France?"}]
OK: dict[str, Any] = {"model": "gpt-4o-mini", "messages": HELLO}


def _nested(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def _counts() -> tuple[int, ...]:
    return (
        GatewayRequest.objects.count(),
        Attempt.objects.count(),
        Reservation.objects.count(),
        Budget.objects.count(),
    )


@pytest.fixture
def nothing_written(e2e, fake_upstream) -> Iterator[None]:
    """The test's requests leave no log row, attempt, reservation or budget, and reach no provider."""
    before = _counts()
    yield
    assert _counts() == before
    assert fake_upstream.requests() == []


def _send(gateway: Any, key: str, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **headers},
        content=content,
        timeout=30,
    )


def _error(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "Traceback" not in response.text
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        # wrong types
        ({"model": "gpt-4o-mini", "messages": "hello"}, "messages"),
        ({**OK, "temperature": "hot"}, "temperature"),
        ({**OK, "max_tokens": 1.5}, "max_tokens"),
        ({**OK, "stream": "yes"}, "stream"),
        ({**OK, "cache": 1}, "cache"),
        ({**OK, "stop": {"a": 1}}, "stop"),
        ({**OK, "tools": "get_weather"}, "tools"),
        ({**OK, "fallbacks": "gpt-4o"}, "fallbacks"),
        ({"model": 42, "messages": HELLO}, "model"),
        ({"model": "gpt-4o-mini", "messages": ["hello"]}, "messages.0"),
        ({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": 7}]}, "messages.0.content"),
        # empty or missing
        ({"model": "gpt-4o-mini", "messages": []}, "messages"),
        ({"model": "gpt-4o-mini"}, "messages"),
        ({"messages": HELLO}, "model"),
        ({"model": "gpt-4o-mini", "messages": [{"role": "user"}]}, "messages.0.content"),
        # unknown values
        ({"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({**OK, "mode": "cheapest"}, "mode"),
        ({**OK, "budget_policy": "hope"}, "budget_policy"),
        ({"mode": "cost-optimized", "messages": HELLO, "provider_filter": ["acme"]}, "provider_filter.0"),
        ({"model": "gpt-9", "messages": HELLO}, "model"),
        ({**OK, "fallbacks": ["gpt-9"]}, "model"),
        # out of range
        ({**OK, "temperature": 2.5}, "temperature"),
        ({**OK, "top_p": -0.1}, "top_p"),
        ({**OK, "max_tokens": 0}, "max_tokens"),
        ({**OK, "max_tokens": 10**30}, "max_tokens"),
        ({**OK, "n": 2}, "n"),
        ({**OK, "max_cost": -1}, "max_cost"),
        ({**OK, "max_cost": 1e300}, "max_cost"),
        ({**OK, "expected_output_tokens": 0}, "expected_output_tokens"),
        ({**OK, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        # nested too deeply for what recurses over it later (encoders, serializers)
        (
            {**OK, "response_format": {"type": "json_schema", "json_schema": {"schema": _nested(300)}}},
            "response_format",
        ),
        (
            {**OK, "tools": [{"type": "function", "function": {"name": "f", "parameters": _nested(200)}}]},
            "tools",
        ),
        ({**OK, "stream_options": _nested(900)}, "stream_options"),
        # NUL characters, which PostgreSQL can store in neither text nor jsonb
        ({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a\x00b"}]}, "messages.0.content"),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "\x00"}]}],
            },
            "messages.0.content.0.text",
        ),
        ({**OK, "user": "eve\x00"}, "user"),
    ],
)
def test_a_bad_field_is_400_naming_it_and_nothing_is_written(e2e, nothing_written, alice_key, body, param):
    error = _error(_send(e2e, alice_key, json.dumps(body).encode()))
    assert error["param"] == param
    assert param in error["message"] or error["code"] == "model_not_found"


@pytest.mark.parametrize(
    "content",
    [
        b'{"model": "gpt-4o-mini", "messages": [',  # truncated
        b"{'model': 'gpt-4o-mini'}",  # not JSON
        b"",
        b"[1, 2, 3]",  # JSON, not an object
        b'"hello"',
        b"null",
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "caf\xe9"}]}',  # Latin-1, not UTF-8
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "\xff\xfe\xfd"}]}',
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "\\ud800"}]}',  # a lone surrogate
        b'{"model": "gpt-4o-mini", "temperature": NaN, "messages": []}',
        b"[" * 10_000 + b"]" * 10_000,  # 10,000 levels: refused by the parser, not a crash
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    ],
    ids=[
        "truncated",
        "single-quotes",
        "empty",
        "array",
        "string",
        "null",
        "latin-1",
        "invalid-utf-8",
        "lone-surrogate",
        "nan",
        "10000-nested-arrays",
        "10000-nested-objects",
    ],
)
def test_a_body_that_is_not_a_json_object_is_400_and_nothing_is_written(
    e2e, nothing_written, alice_key, content
):
    error = _error(_send(e2e, alice_key, content))
    assert error["code"] in ("invalid_json", "invalid_value")
    assert error["param"] is None


def test_a_body_over_the_maximum_is_413_and_nothing_is_written(e2e, nothing_written, alice_key):
    padding = "x" * (settings.ROUTER_MAX_BODY_BYTES + 1)
    content = json.dumps({**OK, "messages": [{"role": "user", "content": padding}]}).encode()
    error = _error(_send(e2e, alice_key, content), status=413)
    assert error["code"] == "request_too_large"
    assert str(settings.ROUTER_MAX_BODY_BYTES) in error["message"]


def test_a_chunked_body_over_the_maximum_is_413_too(e2e, nothing_written, alice_key):
    """Without a Content-Length the size is only known while reading: the limit still holds."""
    piece = b"x" * 65_536
    pieces = settings.ROUTER_MAX_BODY_BYTES // len(piece) + 2

    def chunks() -> Iterator[bytes]:
        yield b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
        for _ in range(pieces):
            yield piece
        yield b'"}]}'

    response = httpx.post(
        e2e.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {alice_key}", "Content-Type": "application/json"},
        content=chunks(),
        timeout=30,
    )
    assert _error(response, status=413)["code"] == "request_too_large"


def test_a_body_just_under_the_maximum_is_served(e2e, alice_key):
    """The limit is the documented one, not some lower accident (the prompt is then too long: 413 context)."""
    text = "hello " * ((settings.ROUTER_MAX_BODY_BYTES - 200) // 6)
    content = json.dumps(
        {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": text}]}
    ).encode()
    assert len(content) < settings.ROUTER_MAX_BODY_BYTES
    response = _send(e2e, alice_key, content)
    assert response.status_code == 200, response.text[:300]


def test_nesting_at_the_limit_is_accepted(e2e, alice_key):
    schema = {
        "type": "json_schema",
        "json_schema": {"name": "deep", "schema": _nested(100, {"type": "string"})},
    }
    response = _send(e2e, alice_key, json.dumps({**OK, "response_format": schema}).encode())
    assert response.status_code == 200, response.text[:300]
