"""POST /v1/chat/compare and GET /v1/chat/compare/{id}: a live gateway and a real Celery worker."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from budgets.models import Budget
from config.celery import app
from routing.models import Comparison, ComparisonResult, GatewayRequest
from routing.services.comparisons import comparison_get, comparison_start, comparison_wait

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("live_worker")]
HELLO = [{"role": "user", "content": "Compare: what is the capital of France?"}]
THREE = ["gpt-4o-mini", "claude-haiku-3.5", "gemini-2.5-flash"]


def _compare(client, models=THREE, **extra):
    return client.post("/chat/compare", json={"messages": HELLO, "models": models, "max_tokens": 20, **extra})


def test_three_models_answer_in_the_order_requested_and_a_failing_one_is_an_error_row(
    alice_http, fake_upstream
):
    fake_upstream.control(model="gemini-2.5-flash", status=500, message="gemini is down")
    response = _compare(alice_http)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["comparison_id"].startswith("cmp_")
    assert body["status"] == "completed"
    assert [r["model"] for r in body["results"]] == [
        "gpt-4o-mini",
        "claude-3-5-haiku-20241022",
        "gemini-2.5-flash",
    ]
    assert [r["provider"] for r in body["results"]] == ["openai", "anthropic", "google"]
    ok, ok2, failed = body["results"]
    assert ok["status"] == ok2["status"] == "success"
    assert ok["content"].startswith("This is a fake answer from gpt-4o-mini")
    assert ok["usage"]["total_cost_usd"] > 0 and ok["latency_ms"] >= 0
    assert failed["status"] == "error"
    assert "gemini is down" in failed["error_message"]
    assert failed["content"] is None
    assert body["summary"]["cheapest"] == "gpt-4o-mini"
    assert body["summary"]["fastest"] in ("gpt-4o-mini", "claude-3-5-haiku-20241022")
    assert Decimal(str(body["total_cost_usd"])) == Decimal(str(ok["usage"]["total_cost_usd"])) + Decimal(
        str(ok2["usage"]["total_cost_usd"])
    )


def test_every_compared_model_is_one_logged_charged_request_linked_to_the_comparison(
    alice_http, fake_upstream
):
    fake_upstream.control(model="gemini-2.5-flash", status=400, message="bad request for gemini")
    comparison_id = _compare(alice_http).json()["comparison_id"]
    rows = GatewayRequest.objects.filter(comparison_id=comparison_id)
    assert sorted(rows.values_list("model", "status")) == [
        ("claude-3-5-haiku-20241022", "success"),
        ("gemini-2.5-flash", "error"),
        ("gpt-4o-mini", "success"),
    ]
    results = ComparisonResult.objects.filter(comparison_id=comparison_id).order_by("index")
    assert [r.request_id for r in results] == [
        rows.get(model=m).id for m in ["gpt-4o-mini", "claude-3-5-haiku-20241022", "gemini-2.5-flash"]
    ]
    budget = Budget.objects.get(user__username="alice")
    assert budget.spent_usd == sum(row.total_cost_usd for row in rows)
    assert budget.reserved_usd == 0


def test_the_stored_comparison_is_returned_by_get(alice_http):
    posted = _compare(alice_http, models=["gpt-4o-mini", "deepseek-chat"]).json()
    fetched = alice_http.get(f"/chat/compare/{posted['comparison_id']}")
    assert fetched.status_code == 200
    assert fetched.json() == posted


def test_waiting_stops_at_the_timeout_with_unfinished_models_pending_and_get_shows_them_later(
    fanout, alice, fake_upstream
):
    fake_upstream.control(model="deepseek-chat", delay_ms=1500)
    comparison = comparison_start(user_id=alice.pk, models=["gpt-4o-mini", "deepseek-chat"], messages=HELLO)
    assert asyncio.run(comparison_wait(comparison_id=comparison.id, timeout_s=0.5)) is False
    early = comparison_get(user_id=alice.pk, comparison_id=comparison.id)
    assert early["status"] == "running"
    assert early["results"][1]["status"] == "pending"
    assert asyncio.run(comparison_wait(comparison_id=comparison.id, timeout_s=30)) is True
    late = comparison_get(user_id=alice.pk, comparison_id=comparison.id)
    assert late["status"] == "completed"
    assert [r["status"] for r in late["results"]] == ["success", "success"]


@pytest.mark.parametrize(
    ("models", "param", "code"),
    [
        (["gpt-4o-mini"], "models", "invalid_value"),
        ([f"m{i}" for i in range(11)], "models", "invalid_value"),
        (["gpt-4o-mini", "gpt-9"], "models[1]", "model_not_found"),
        (["claude-sonnet-4.5", "claude-sonnet-4-5-20250929"], "models[1]", "duplicate_model"),
        (["gpt-4o-mini", "gpt-4o-mini"], "models[1]", "duplicate_model"),
    ],
)
def test_fewer_than_two_more_than_ten_unknown_or_duplicate_models_are_400(alice_http, models, param, code):
    response = _compare(alice_http, models=models)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] == code
    assert not Comparison.objects.exists()


def test_a_malformed_body_is_400_and_a_missing_key_401(alice_http, fanout):
    assert alice_http.post("/chat/compare", content=b"{nope").status_code == 400
    assert alice_http.post("/chat/compare", json={"models": THREE}).status_code == 400
    import httpx

    assert (
        httpx.post(fanout.url + "/v1/chat/compare", json={"messages": HELLO, "models": THREE}).status_code
        == 401
    )


def test_another_users_comparison_is_404(alice_http, bob_http):
    comparison_id = _compare(alice_http, models=["gpt-4o-mini", "deepseek-chat"]).json()["comparison_id"]
    response = bob_http.get(f"/chat/compare/{comparison_id}")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert bob_http.get("/chat/compare/cmp_unknown").status_code == 404


def test_the_worker_is_a_real_celery_worker_not_eager_mode(live_worker):
    assert not app.conf.task_always_eager
    assert live_worker.process is not None and live_worker.process.poll() is None
