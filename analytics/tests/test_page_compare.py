"""The compare playground: pick models, run, and results appear side by side as they finish (HTMX polling).

The comparison services belong to the routing app; these tests stand in for them.
"""

import sys
import types
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.tests.factories import GatewayRequestFactory
from config.api_errors import InvalidRequest, NotFound
from routing.models import Comparison, GatewayRequest

pytestmark = pytest.mark.django_db

URL = "/dashboard/compare/"


def _answer(comparison: Comparison) -> dict:
    """What routing's comparison_get returns (the /v1/chat/compare shape), built from the logged requests."""
    logged = {r.model: r for r in GatewayRequest.objects.filter(comparison_id=comparison.pk)}
    results = []
    for model in comparison.models_requested:
        row = logged.get(model)
        results.append(
            {
                "model": model,
                "provider": row.provider if row else "",
                "status": row.status if row else "pending",
                "request_id": row.id if row else None,
                "content": row.response_text if row else None,
                "usage": {
                    "prompt_tokens": row.input_tokens,
                    "completion_tokens": row.output_tokens,
                    "total_cost_usd": row.total_cost_usd,
                }
                if row
                else None,
                "latency_ms": row.latency_ms if row else None,
                "error_message": row.error_message or None if row else None,
            }
        )
    done = [r for r in results if r["status"] == "success"]
    return {
        "comparison_id": comparison.pk,
        "status": comparison.status,
        "models": comparison.models_requested,
        "results": results,
        "total_cost_usd": sum((r.total_cost_usd for r in logged.values()), Decimal(0)),
        "created_at": comparison.created_at.isoformat().replace("+00:00", "Z"),
        "summary": {
            "cheapest": min(done, key=lambda r: r["usage"]["total_cost_usd"])["model"] if done else None,
            "fastest": min(done, key=lambda r: r["latency_ms"])["model"] if done else None,
        },
    }


@pytest.fixture
def services(monkeypatch):
    """A stand-in routing.services.comparisons that records calls and creates the Comparison row."""
    module = types.ModuleType("routing.services.comparisons")
    module.calls = []

    def comparison_start(*, user_id, models, messages, temperature=None, max_tokens=None, **extra):
        module.calls.append({"user_id": user_id, "models": models, "messages": messages,
                             "temperature": temperature, "max_tokens": max_tokens})  # fmt: skip
        return Comparison.objects.create(
            id="cmp_test1", user_id=user_id, models_requested=models, messages=messages
        )

    def comparison_get(*, user_id, comparison_id):
        comparison = Comparison.objects.filter(pk=comparison_id, user_id=user_id).first()
        if comparison is None:
            raise NotFound(f"Comparison '{comparison_id}' not found")
        return _answer(comparison)

    module.comparison_start = comparison_start
    module.comparison_get = comparison_get
    monkeypatch.setitem(sys.modules, "routing.services.comparisons", module)
    return module


def _post(client, **extra):
    data = {
        "models": ["gpt-4o-mini", "deepseek-chat"],
        "prompt": "Say hi",
        "temperature": "0.5",
        "max_tokens": "50",
    }
    return client.post(URL, data, **extra)


def test_full_page_shows_the_model_picker(client, alice, catalog):
    client.force_login(alice)
    html = client.get(URL).content.decode()
    assert "<html" in html and 'id="compare-form"' in html
    assert 'value="gpt-4o-mini"' in html and "No comparison yet" in html


def test_running_it_without_js_redirects_to_the_result_page(client, alice, catalog, services):
    client.force_login(alice)
    response = _post(client)
    assert response.status_code == 303
    assert response["Location"] == "/dashboard/compare/cmp_test1/"
    call = services.calls[0]
    assert call["user_id"] == alice.pk
    assert call["models"] == ["gpt-4o-mini", "deepseek-chat"]
    assert call["messages"] == [{"role": "user", "content": "Say hi"}]
    assert (call["temperature"], call["max_tokens"]) == (0.5, 50)


def test_running_it_with_htmx_returns_the_results_fragment_that_polls(client, alice, catalog, services):
    client.force_login(alice)
    response = _post(client, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="compare-results"')
    assert 'hx-trigger="every 1s"' in html and "waiting for an answer" in html
    assert response["HX-Push-Url"] == "/dashboard/compare/cmp_test1/"


def test_results_appear_as_they_finish_with_cheapest_and_fastest_marked(client, alice, catalog, services):
    client.force_login(alice)
    _post(client)
    GatewayRequestFactory(user=alice, comparison_id="cmp_test1", model="gpt-4o-mini", response_text="Hi from mini",
                          total_cost_usd=Decimal("0.001"), latency_ms=900)  # fmt: skip
    partial = client.get("/dashboard/compare/cmp_test1/", HTTP_HX_REQUEST="true").content.decode()
    assert "Hi from mini" in partial and "waiting for an answer" in partial and "every 1s" in partial

    GatewayRequestFactory(user=alice, comparison_id="cmp_test1", model="deepseek-chat", provider="deepseek",
                          response_text="Hi from deepseek", total_cost_usd=Decimal("0.0001"), latency_ms=1500)  # fmt: skip
    Comparison.objects.filter(pk="cmp_test1").update(status="completed", completed_at=timezone.now())
    done = client.get("/dashboard/compare/cmp_test1/", HTTP_HX_REQUEST="true").content.decode()
    assert "every 1s" not in done and 'data-status="done"' in done
    deepseek = done[done.index('data-model="deepseek-chat"') :]
    assert "cheapest" in deepseek.split("</article>")[0]
    mini = done[done.index('data-model="gpt-4o-mini"') :]
    assert "fastest" in mini.split("</article>")[0]


def test_the_result_page_without_js_refreshes_itself_while_running(client, alice, catalog, services):
    client.force_login(alice)
    _post(client)
    html = client.get("/dashboard/compare/cmp_test1/").content.decode()
    assert "<html" in html and 'http-equiv="refresh"' in html
    assert "Say hi" in html  # the form keeps the prompt for another run


def test_fewer_than_two_models_is_a_form_error(client, alice, catalog, services):
    client.force_login(alice)
    response = client.post(URL, {"models": ["gpt-4o-mini"], "prompt": "x"})
    assert response.status_code == 400
    assert "Pick between 2 and 10 models." in response.content.decode()
    assert services.calls == []


def test_a_service_refusal_is_shown_in_the_form(client, alice, catalog, services):
    client.force_login(alice)
    services.comparison_start = lambda **kw: (_ for _ in ()).throw(InvalidRequest("Budget exceeded"))
    response = client.post(
        URL, {"models": ["gpt-4o-mini", "deepseek-chat"], "prompt": "x"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200  # htmx swaps only 2xx
    assert response["HX-Retarget"] == "#compare-form"
    assert "Budget exceeded" in response.content.decode()


def test_another_users_comparison_is_a_404(client, alice, bob, catalog, services):
    Comparison.objects.create(id="cmp_bob", user=bob, models_requested=["gpt-4o"], messages=[])
    client.force_login(alice)
    assert client.get("/dashboard/compare/cmp_bob/").status_code == 404
