"""POST /v1/chat/batch and GET /v1/chat/batch/{id}: a live gateway and a real Celery worker; the lane bound."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from unittest import mock

import httpx
import pytest

from accounts.services import api_key_issue
from budgets.limits import budget_limit_set
from budgets.models import Budget
from config.celery import app
from providers.bounds import prompt_tokens_bound
from providers.catalog import catalog_get
from providers.cost_bounds import worst_case_cost
from routing.models import BatchItem, BatchJob, GatewayRequest
from routing.pipeline.plan import PromptCounts
from routing.pipeline.types import CompletionInput
from routing.services import batch_lanes, batches
from routing.tests.rate_windows import requests_counted

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("live_worker")]


def _messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Batch question number {i:02d}: name a colour."}]


def _poll(client: httpx.Client, batch_id: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"/chat/batch/{batch_id}").json()
        if body["status"] == "completed":
            return body
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} did not complete in {timeout_s}s: {body}")


def test_a_batch_of_50_answers_202_at_once_and_is_polled_to_completion(alice_http, fake_upstream):
    requests = [{"messages": _messages(i), **({"id": f"item-{i}"} if i % 2 else {})} for i in range(50)]
    response = alice_http.post(
        "/chat/batch", json={"requests": requests, "model": "gpt-4o-mini", "max_tokens": 16, "wait": False}
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["batch_id"].startswith("batch_")
    assert accepted["status"] == "queued"
    assert accepted["total_requests"] == 50

    progress = alice_http.get(f"/chat/batch/{accepted['batch_id']}").json()
    assert progress["total_requests"] == 50
    assert progress["successful"] + progress["failed"] + progress["pending"] == 50

    done = _poll(alice_http, accepted["batch_id"])
    assert done["successful"] == 50 and done["failed"] == 0 and done["pending"] == 0
    assert [r["index"] for r in done["results"]] == list(range(50))
    assert [r["id"] for r in done["results"]] == [f"item-{i}" if i % 2 else str(i) for i in range(50)]
    for result in done["results"]:
        assert result["status"] == "success"
        assert result["content"].startswith("This is a fake answer from gpt-4o-mini")
        assert result["usage"]["total_tokens"] > 0
        assert result["error_message"] is None
    assert done["completed_at"] >= done["created_at"]
    assert done["total_latency_ms"] >= 0

    rows = GatewayRequest.objects.filter(batch_id=accepted["batch_id"])
    assert rows.count() == 50
    assert len(fake_upstream.requests(model="gpt-4o-mini")) == 50
    total = sum(row.total_cost_usd for row in rows)
    assert Decimal(str(done["total_cost_usd"])) == total
    assert Budget.objects.get(user__username="alice").spent_usd == total


def test_with_wait_the_call_returns_the_results_when_done(alice_http):
    response = alice_http.post(
        "/chat/batch",
        json={"requests": [{"messages": _messages(i)} for i in range(3)], "model": "deepseek-chat"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed"
    assert [r["status"] for r in body["results"]] == ["success"] * 3
    assert [r["model"] for r in body["results"]] == ["deepseek-chat"] * 3


def test_items_override_the_batch_model_and_parameters(alice_http, fake_upstream):
    requests = [
        {"messages": _messages(0)},
        {"messages": _messages(1), "model": "claude-haiku-3.5", "max_tokens": 7},
        {"messages": _messages(2), "temperature": 0.2},
    ]
    body = alice_http.post(
        "/chat/batch",
        json={"requests": requests, "model": "gpt-4o-mini", "max_tokens": 30, "temperature": 1.0},
    ).json()
    assert [r["model"] for r in body["results"]] == [
        "gpt-4o-mini",
        "claude-3-5-haiku-20241022",
        "gpt-4o-mini",
    ]
    rows = {row.client_request_id: row for row in GatewayRequest.objects.filter(batch_id=body["batch_id"])}
    assert rows["0"].params == {"max_tokens": 30, "temperature": 1.0}
    assert rows["1"].params == {"max_tokens": 7, "temperature": 1.0}
    assert rows["2"].params == {"max_tokens": 30, "temperature": 0.2}
    assert fake_upstream.requests(model="claude-3-5-haiku-20241022")[0]["body"]["max_tokens"] == 7


def test_a_batch_of_20_where_the_budget_fits_10_refuses_the_rest_with_402(alice_http, alice, fake_upstream):
    fake_upstream.control(model="gpt-4o-mini", answer="word " * 2000)  # every answer uses all of max_tokens
    catalog = catalog_get(fresh=True)
    model = catalog.by_name("gpt-4o-mini")
    assert model is not None and model.rates is not None

    def held_prompt(i: int) -> int:  # what a hold covers (routing.pipeline.run.CompletionRun.held_prompt)
        estimate = PromptCounts(CompletionInput(messages=_messages(i)), catalog).get(model.model_id)
        return min(max(prompt_tokens_bound(_messages(i)), estimate), model.context_window)

    worst = max(worst_case_cost(model.rates, held_prompt(i), 1000) for i in range(20))
    # Ten worst cases fit in any order; an eleventh never does, as long as an answer costs over 92% of its
    # worst case: the answer uses all of max_tokens and output dominates the price (about 96% here, the
    # prompt being held at its UTF-8 bound).
    budget_limit_set(user_id=alice.pk, limit_usd=worst * Decimal("10.2"))

    body = alice_http.post(
        "/chat/batch",
        json={
            "requests": [{"messages": _messages(i)} for i in range(20)],
            "model": "gpt-4o-mini",
            "max_tokens": 1000,
        },
    ).json()

    assert body["status"] == "completed"
    assert (body["successful"], body["failed"]) == (10, 10)
    refused = [r for r in body["results"] if r["status"] == "error"]
    assert all(
        r["error_code"] == "budget_exceeded" and "Budget exceeded" in r["error_message"] for r in refused
    )
    rows = GatewayRequest.objects.filter(batch_id=body["batch_id"])
    assert rows.filter(http_status=402).count() == 10
    assert rows.filter(status="success").count() == 10
    budget = Budget.objects.get(user=alice)
    assert budget.spent_usd == sum(row.total_cost_usd for row in rows)
    assert budget.spent_usd <= budget.own_limit_usd
    assert budget.reserved_usd == 0


def test_waiting_for_a_batch_does_not_block_the_gateways_event_loop(alice_http, fanout, fake_upstream):
    fake_upstream.control(model="gpt-4o-mini", delay_ms=1500)
    outcome: dict = {}

    def post() -> None:
        outcome["response"] = alice_http.post(
            "/chat/batch", json={"requests": [{"messages": _messages(0)}], "model": "gpt-4o-mini"}
        )

    waiting = threading.Thread(target=post)
    waiting.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert httpx.get(fanout.url + "/health", timeout=5).status_code == 200
    assert time.monotonic() - started < 0.5
    waiting.join(timeout=30)
    assert outcome["response"].status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"requests": []}, "requests"),
        ({"requests": [{"messages": _messages(i)} for i in range(101)], "model": "gpt-4o-mini"}, "requests"),
        ({"requests": [{"messages": _messages(0)}], "model": "gpt-9"}, "model"),
        (
            {"requests": [{"messages": _messages(0), "model": "gpt-9"}], "model": "gpt-4o-mini"},
            "requests[0].model",
        ),
        ({"requests": [{"messages": _messages(0)}, {"messages": _messages(1)}]}, "requests[0].model"),
        (
            {
                "requests": [{"messages": _messages(0), "id": "a"}, {"messages": _messages(1), "id": "a"}],
                "model": "gpt-4o-mini",
            },
            "requests[1].id",
        ),
        ({"requests": [{"messages": []}], "model": "gpt-4o-mini"}, "requests[0].messages"),
        ({"requests": [{"messages": _messages(0)}], "model": "gpt-4o-mini", "wait": "yes"}, "wait"),
        ({"model": "gpt-4o-mini"}, "requests"),
    ],
)
def test_bad_batches_are_400_naming_the_field_and_nothing_is_stored(alice_http, body, param):
    response = alice_http.post("/chat/batch", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    # The serializer names nested fields "requests.0.messages", the service "requests[0].model".
    assert error["param"].replace("[", ".").replace("]", "") == param.replace("[", ".").replace("]", "")
    assert not BatchJob.objects.exists()


def test_another_users_batch_is_404(alice_http, bob_http):
    batch_id = alice_http.post(
        "/chat/batch", json={"requests": [{"messages": _messages(0)}], "model": "gpt-4o-mini", "wait": False}
    ).json()["batch_id"]
    response = bob_http.get(f"/chat/batch/{batch_id}")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert bob_http.get("/chat/batch/batch_unknown").status_code == 404
    _poll(alice_http, batch_id)


# --------------------------------------------------------------------------------------------- rate limits


@pytest.fixture
def five_rpm(fanout, alice):
    """A client whose key allows 5 requests per minute (a sliding window: any moment will do)."""
    api_key, key = api_key_issue(user=alice, name="five-rpm", rate_limit_rpm=5)
    with httpx.Client(
        base_url=fanout.url + "/v1", headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        yield client, api_key.pk


def _batch(n: int, first: int = 0, **extra: object) -> dict:
    """n items with questions of their own (first, first + 1, …): none is answered from the response cache."""
    items = [{"messages": _messages(i)} for i in range(first, first + n)]
    return {"requests": items, "model": "gpt-4o-mini", **extra}


def test_a_batch_of_20_under_5_rpm_is_refused_whole_with_429_and_no_provider_call(five_rpm, fake_upstream):
    client, key_id = five_rpm
    refused = client.post("/chat/batch", json=_batch(20, wait=False))
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert int(refused.headers["Retry-After"]) >= 1
    assert not BatchJob.objects.exists()
    assert requests_counted(key_id) == 0
    time.sleep(0.5)  # anything sent to a worker would have reached the provider by now
    assert fake_upstream.requests() == []


def test_a_batch_that_fits_is_admitted_and_counts_each_item_against_the_rpm(five_rpm, fake_upstream):
    client, key_id = five_rpm
    assert client.post("/chat/batch", json=_batch(3)).status_code == 200
    assert requests_counted(key_id) == 3
    assert client.post("/chat/batch", json=_batch(3)).status_code == 429  # 3 + 3 > 5: none of them
    assert client.post("/chat/batch", json=_batch(2, first=3)).status_code == 200
    chat = client.post("/chat/completions", json={"model": "gpt-4o-mini", "messages": _messages(9)})
    assert chat.status_code == 429
    assert requests_counted(key_id) == 5
    assert len(fake_upstream.requests()) == 5
    assert BatchJob.objects.count() == 2


def test_a_batch_refused_with_400_gives_its_requests_back(five_rpm):
    client, key_id = five_rpm
    bad = _batch(5)
    bad["requests"][4]["model"] = "gpt-9"
    assert client.post("/chat/batch", json=bad).status_code == 400
    assert requests_counted(key_id) == 0
    assert client.post("/chat/batch", json=_batch(5)).status_code == 200


# --------------------------------------------------------------------------------------------- the lane bound


@pytest.fixture
def sent(transactional_db, catalog):
    """Task messages the batch services would send, captured instead."""
    captured: list[int] = []
    with mock.patch.object(batch_lanes, "_publish", captured.extend):
        yield captured


def test_no_more_than_the_bound_per_provider_is_ever_in_flight(sent, alice, settings):
    settings.ROUTER_BATCH_CONCURRENCY = 3
    first = batches.batch_create(
        user_id=alice.pk,
        requests=[{"messages": _messages(i)} for i in range(5)]
        + [{"messages": _messages(9), "model": "deepseek-chat"}],
        model="gpt-4o-mini",
    )
    second = batches.batch_create(
        user_id=alice.pk, requests=[{"messages": _messages(i)} for i in range(4)], model="gpt-4o-mini"
    )
    items = BatchItem.objects.order_by("pk")
    openai_first = [i.pk for i in items if i.lane == "openai"][:3]
    deepseek = [i.pk for i in items if i.lane == "deepseek"]
    assert sorted(sent) == sorted(openai_first + deepseek)
    assert BatchItem.objects.filter(lane="openai", status="queued").count() == 3
    assert BatchItem.objects.filter(batch=second, status="pending").count() == 4

    BatchItem.objects.filter(pk=openai_first[0]).update(status="success")
    sent.clear()
    assert batch_lanes.lane_fill(lane="openai") == sent == [openai_first[-1] + 1]
    assert batch_lanes.lane_fill(lane="openai") == []
    assert first.items.filter(status="pending").count() == 1


def test_the_resume_job_runs_on_celery_beat():
    import routing.tasks  # noqa: F401 - registers the tasks, as the worker's autodiscovery does

    entry = app.conf.beat_schedule["resume-batches-and-comparisons"]
    assert entry["task"] == "routing.tasks.batches_resume_task"
    assert entry["task"] in app.tasks
