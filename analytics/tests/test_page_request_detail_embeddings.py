"""The request detail page of an embeddings call: its inputs and the vectors' count and size, never the vectors."""

from decimal import Decimal

import pytest

from analytics.tests.factories import GatewayRequestFactory

pytestmark = pytest.mark.django_db


def _embeddings_row(user, **fields):
    values = {
        "user": user,
        "door": "embeddings",
        "model": "gemini-embedding-001",
        "provider": "google",
        "messages": ["The cat sat on the mat.", [791, 8415, 7731]],
        "prompt_text": "The cat sat on the mat.\nThe cat sat",
        "response_text": "",
        "finish_reason": "",
        "input_tokens": 12,
        "output_tokens": 0,
        "input_cost_usd": Decimal("0.0000018"),
        "output_cost_usd": Decimal(0),
        "params": {
            "dimensions": 768,
            "embedding": {"vectors": 2, "dimensions": 768, "usage_estimated": True},
        },
    }
    return GatewayRequestFactory(**{**values, **fields})


def test_full_page_shows_the_inputs_and_the_vector_sizes(client, alice):
    row = _embeddings_row(alice)
    client.force_login(alice)
    response = client.get(f"/dashboard/requests/{row.id}/")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert 'data-testid="embedding-inputs"' in html and "The cat sat on the mat." in html
    assert "token array of 3 tokens" in html
    assert 'data-testid="embedding-vectors"' in html and "768" in html and "estimated" in html
    assert "The vectors themselves are not stored." in html
    assert "Response" not in html.split('data-testid="embedding-inputs"')[1]  # no chat response card


def test_htmx_request_gets_the_same_cards_as_a_fragment(client, alice):
    row = _embeddings_row(alice, params={"embedding": {"vectors": 1, "dimensions": [256, 512]}})
    client.force_login(alice)
    html = client.get(f"/dashboard/requests/{row.id}/", HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="request-body">') and "<html" not in html
    assert "256, 512" in html and "reported by the provider" in html


def test_a_failed_embeddings_call_says_there_are_no_vectors(client, alice):
    row = _embeddings_row(alice, status="error", error_code="upstream_bad_request", params={})
    client.force_login(alice)
    html = client.get(f"/dashboard/requests/{row.id}/").content.decode()
    assert "No vectors: the request failed." in html and "upstream_bad_request" in html
