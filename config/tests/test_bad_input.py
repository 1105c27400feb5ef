"""Hostile bodies to every DRF endpoint that takes one: 400 or 413 in the envelope, never a crash, nothing written.

Field-by-field validation has tests beside each API (budgets/tests/test_budget_api.py,
analytics/tests/test_request_list_api.py, providers/tests/test_token_estimate_api.py); these are the bodies
no serializer ever sees.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings

from budgets.models import Budget, Reservation
from routing.models import GatewayRequest

pytestmark = pytest.mark.django_db

ENDPOINTS = [("put", "/v1/budget/limit"), ("post", "/v1/tokens/estimate")]
HOSTILE = {
    "10000-nested-arrays": b"[" * 10_000 + b"]" * 10_000,
    "10000-nested-objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "200-nested-in-a-field": b'{"limit_usd": 1, "messages": ' + b"[" * 200 + b"]" * 200 + b"}",
    "invalid-utf-8": b'{"limit_usd": "\xff\xfe", "messages": [{"role": "user", "content": "\xc3\x28"}]}',
    "truncated": b'{"limit_usd": ',
    "nan": b'{"limit_usd": NaN}',
}


def _state(user: Any) -> tuple[Any, ...]:
    budget = Budget.objects.filter(user=user).values_list("own_limit_usd", "spent_usd").first()
    return budget, GatewayRequest.objects.count(), Reservation.objects.count()


def _assert_envelope(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert b"Traceback" not in response.content
    return error


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("content", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_body_is_400_in_the_envelope_and_nothing_changes(alice_api, alice, method, path, content):
    Budget.objects.create(user=alice, own_limit_usd=Decimal("7"))
    before = _state(alice)
    response = getattr(alice_api, method)(path, data=content, content_type="application/json")
    assert _assert_envelope(response, 400)["code"] == "invalid_json"
    assert _state(alice) == before


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_body_over_the_maximum_is_413_and_nothing_changes(alice_api, alice, method, path):
    before = _state(alice)
    content = b'{"limit_usd": 1, "pad": "' + b"x" * settings.ROUTER_MAX_BODY_BYTES + b'"}'
    response = getattr(alice_api, method)(path, data=content, content_type="application/json")
    assert _assert_envelope(response, 413)["code"] == "request_too_large"
    assert _state(alice) == before


def test_an_unknown_v1_path_is_a_404_in_the_envelope(alice_api, client):
    for response in (
        alice_api.get("/v1/nope"),
        alice_api.post("/v1/chat/nothing", data={}),
        client.get("/v1/x"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "unknown_endpoint"
    assert b"<html" in client.get("/no-such-page/").content.lower()  # the site keeps its own 404 page


@pytest.mark.parametrize(("method", "path"), [("get", "/v1/chat/completions"), ("delete", "/v1/budget")])
def test_a_wrong_method_is_a_405_in_the_envelope_naming_the_allowed_ones(alice_api, method, path):
    response = getattr(alice_api, method)(path)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response["Allow"] or "GET" in response["Allow"]
