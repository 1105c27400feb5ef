"""GET /v1/analytics/requests/{id}: one request of the caller's, with its attempts."""

from decimal import Decimal

import pytest

from analytics.tests.factories import AttemptFactory, GatewayRequestFactory

pytestmark = pytest.mark.django_db


def url(request_id: str) -> str:
    return f"/v1/analytics/requests/{request_id}"


def test_it_answers_with_the_contract_field_names(alice, alice_api):
    row = GatewayRequestFactory(user=alice)
    body = alice_api.get(url(row.id)).json()
    for name in (
        "id",
        "created_at",
        "completed_at",
        "model",
        "provider",
        "prompt_text",
        "response_text",
        "messages",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "input_cost_usd",
        "output_cost_usd",
        "total_cost_usd",
        "latency_ms",
        "status",
        "error_message",
        "cached",
        "selection_mode",
        "attempts",
        "comparison_id",
        "batch_id",
    ):
        assert name in body, name


def test_it_shows_the_full_prompt_response_costs_and_attempts(alice, alice_api):
    row = GatewayRequestFactory(user=alice, prompt_text="p" * 500, response_text="r" * 500)
    AttemptFactory(
        request=row,
        index=0,
        status="error",
        status_code=503,
        error="Provider returned 503",
        model="gpt-4o",
        provider="openai",
    )
    AttemptFactory(request=row, index=1)
    body = alice_api.get(url(row.id)).json()
    assert body["prompt_text"] == "p" * 500
    assert body["response_text"] == "r" * 500
    assert body["messages"] == [{"role": "user", "content": "p" * 500}]
    assert body["input_cost_usd"] == 0.00000345
    assert body["output_cost_usd"] == 0.0000048
    assert body["total_cost_usd"] == 0.00000825
    assert [a["status"] for a in body["attempts"]] == ["error", "success"]
    assert body["attempts"][0]["error"] == "Provider returned 503"
    assert body["comparison_id"] is None and body["batch_id"] is None
    assert body["created_at"].endswith("Z")


def test_another_users_request_is_a_404_envelope(alice, bob_api):
    row = GatewayRequestFactory(user=alice, total_cost_usd=Decimal(1))
    response = bob_api.get(url(row.id))
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_an_unknown_id_is_a_404_envelope(alice_api):
    response = alice_api.get(url("req_doesnotexist"))
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_a_staff_key_still_sees_only_its_own_requests(alice, admin_user):
    from rest_framework.test import APIClient

    from accounts.services import api_key_issue

    row = GatewayRequestFactory(user=alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_issue(user=admin_user)[1]}")
    assert client.get(url(row.id)).status_code == 404


def test_an_id_with_a_nul_byte_is_a_404_not_a_500(alice_api):
    assert alice_api.get(url("req_%00x")).status_code == 404


def test_it_says_which_door_the_request_came_through(alice, alice_api):
    row = GatewayRequestFactory(user=alice, door="responses")
    assert alice_api.get(url(row.id)).json()["door"] == "responses"
    assert alice_api.get(url(GatewayRequestFactory(user=alice).id)).json()["door"] == "chat"
