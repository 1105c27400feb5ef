"""Idempotency-Key on every spending POST: a retry within 24 hours gets the first outcome and is never charged twice.

End to end against a live gateway in front of the fake upstream (compare and batch with a real Celery worker);
every request skips the response cache, so a second run would be a second charge, not a free cache hit.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import api_key_issue
from budgets.limits import budget_limit_set
from budgets.models import Budget
from config.celery import app
from routing.models import BatchJob, Comparison, GatewayRequest, IdempotencyRecord
from routing.services.idempotency import idempotency_fingerprint, idempotency_records_purge

pytestmark = pytest.mark.e2e
HELLO = [{"role": "user", "content": "What is the capital of France?"}]
CHAT = {"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 30}
ANTHROPIC = {"anthropic-version": "2023-06-01"}


def _post(client: httpx.Client, path: str, body: dict | bytes, key: str | None, **headers: str):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", "X-Router-Cache": "off", **headers}
    if key is not None:
        sent["Idempotency-Key"] = key
    return client.post(path, content=raw, headers=sent)


def _spent(user) -> Decimal:
    return Budget.objects.get(user=user).spent_usd


def _key_id(user) -> int:
    return ApiKey.objects.get(user=user).pk


def _record(user, key: str, **fields) -> IdempotencyRecord:
    now = timezone.now()
    values = {"state": "in_progress", "request_id": "req_earlier", "expires_at": now + timedelta(hours=24)}
    return IdempotencyRecord.objects.create(api_key_id=_key_id(user), key=key, **{**values, **fields})


def _wait_done(key: str, timeout_s: float = 10) -> IdempotencyRecord:
    """A stream's copy is kept once its last event has gone out, a moment after the client read it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = IdempotencyRecord.objects.filter(key=key).first()
        if record is not None and record.state == "done":
            return record
        time.sleep(0.05)
    raise AssertionError(f"the record of {key} was not done in {timeout_s}s")


# ------------------------------------------------------------------------------------------------- replays


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/chat/completions", CHAT, {}),
        ("/messages", {"model": "claude-sonnet-4.5", "max_tokens": 30, "messages": HELLO}, ANTHROPIC),
        ("/responses", {"model": "gpt-4o-mini", "input": "What is the capital of France?"}, {}),
    ],
)
def test_a_retry_with_the_same_key_replays_the_first_answer_and_is_charged_once(
    alice_http, alice, fake_upstream, path, body, headers
):
    first = _post(alice_http, path, body, "retry-1", **headers)
    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers
    spent = _spent(alice)
    assert spent > 0

    again = _post(alice_http, path, body, "retry-1", **headers)
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.headers["X-Request-Id"] == first.headers["X-Request-Id"]
    assert again.headers["X-Router-Cost-Usd"] == first.headers["X-Router-Cost-Usd"]
    assert GatewayRequest.objects.count() == 1
    assert GatewayRequest.objects.get().pk == first.headers["X-Request-Id"]
    assert len(fake_upstream.requests()) == 1
    assert _spent(alice) == spent == GatewayRequest.objects.get().total_cost_usd


def test_a_retried_stream_replays_the_same_events_and_is_charged_once(alice_http, alice, fake_upstream):
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    first = _post(alice_http, "/chat/completions", body, "stream-1")
    assert first.status_code == 200 and first.text.endswith("data: [DONE]\n\n")
    record = _wait_done("stream-1")
    assert record.headers["Content-Type"] == "text/event-stream" and bytes(record.body) == first.content

    again = _post(alice_http, "/chat/completions", body, "stream-1")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert again.headers["Content-Type"] == "text/event-stream"
    assert GatewayRequest.objects.count() == 1 and len(fake_upstream.requests()) == 1
    assert _spent(alice) == GatewayRequest.objects.get().total_cost_usd > 0


def test_without_the_header_each_request_runs_and_nothing_is_kept(alice_http):
    for _ in range(2):
        assert _post(alice_http, "/chat/completions", CHAT, None).status_code == 200
    assert GatewayRequest.objects.count() == 2
    assert not IdempotencyRecord.objects.exists()


def test_a_replay_is_not_counted_against_the_rate_limit(e2e, alice):
    _, raw = api_key_issue(user=alice, name="one-rpm", rate_limit_rpm=1)
    left = 60 - time.time() % 60
    if left < 15:  # fixed one-minute windows: the test must not straddle two
        time.sleep(left + 0.2)
    with httpx.Client(base_url=e2e.url + "/v1", headers={"Authorization": f"Bearer {raw}"}) as client:
        assert _post(client, "/chat/completions", CHAT, "limited").status_code == 200
        again = _post(client, "/chat/completions", CHAT, "limited")
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
        assert _post(client, "/chat/completions", CHAT, "another").status_code == 429


# ------------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/chat/completions", CHAT, {}),
        ("/messages", {"model": "claude-sonnet-4.5", "max_tokens": 30, "messages": HELLO}, ANTHROPIC),
    ],
)
def test_the_same_key_with_another_body_is_422_in_the_doors_envelope_and_runs_nothing(
    alice_http, alice, path, body, headers
):
    assert _post(alice_http, path, body, "reused", **headers).status_code == 200
    spent = _spent(alice)
    other = _post(alice_http, path, {**body, "max_tokens": 31}, "reused", **headers)
    assert other.status_code == 422
    if path == "/messages":  # Anthropic's envelope
        assert other.json()["type"] == "error"
        assert other.json()["error"]["type"] == "invalid_request_error"
        assert "different request" in other.json()["error"]["message"]
    else:
        assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert GatewayRequest.objects.count() == 1 and _spent(alice) == spent


def test_a_key_still_in_progress_is_409_with_retry_after(alice_http, alice, fake_upstream):
    raw = json.dumps(CHAT).encode()
    fingerprint = idempotency_fingerprint(method="POST", path="/v1/chat/completions", body=raw)
    _record(alice, "busy", fingerprint=fingerprint)
    response = _post(alice_http, "/chat/completions", raw, "busy")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_progress"
    assert response.headers["Retry-After"] == "1"
    assert not GatewayRequest.objects.exists() and not fake_upstream.requests()


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_an_empty_or_overlong_key_is_400_and_runs_nothing(alice_http, key):
    response = _post(alice_http, "/chat/completions", CHAT, key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert not GatewayRequest.objects.exists() and not IdempotencyRecord.objects.exists()


def test_a_bad_api_key_stays_a_401(e2e):
    with httpx.Client(base_url=e2e.url + "/v1", headers={"Authorization": "Bearer amr_nope"}) as client:
        response = _post(client, "/chat/completions", CHAT, "k" * 300)
    assert response.status_code == 401 and not IdempotencyRecord.objects.exists()


def test_an_error_outcome_releases_the_key_for_a_corrected_retry(alice_http):
    wrong = _post(alice_http, "/chat/completions", {**CHAT, "model": "gpt-9"}, "fix-me")
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "model_not_found"
    assert not IdempotencyRecord.objects.exists()
    fixed = _post(alice_http, "/chat/completions", CHAT, "fix-me")
    assert fixed.status_code == 200 and "Idempotent-Replayed" not in fixed.headers
    assert GatewayRequest.objects.filter(status="success").count() == 1


def test_a_request_refused_over_budget_releases_the_key(alice_http, alice):
    budget_limit_set(user_id=alice.pk, limit_usd=Decimal("0"))
    refused = _post(alice_http, "/chat/completions", CHAT, "broke")
    assert refused.status_code == 402
    budget_limit_set(user_id=alice.pk, limit_usd=None)
    paid = _post(alice_http, "/chat/completions", CHAT, "broke")
    assert paid.status_code == 200 and "Idempotent-Replayed" not in paid.headers
    assert IdempotencyRecord.objects.get(key="broke").state == "done"


def test_keys_are_per_api_key(alice_http, bob_http):
    mine = _post(alice_http, "/chat/completions", CHAT, "shared-name")
    theirs = _post(bob_http, "/chat/completions", CHAT, "shared-name")
    assert mine.status_code == theirs.status_code == 200
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.headers["X-Request-Id"] != theirs.headers["X-Request-Id"]
    assert GatewayRequest.objects.count() == 2 and IdempotencyRecord.objects.count() == 2


def test_a_record_older_than_24_hours_is_not_replayed(alice_http, alice):
    raw = json.dumps(CHAT).encode()
    fingerprint = idempotency_fingerprint(method="POST", path="/v1/chat/completions", body=raw)
    past = timezone.now() - timedelta(hours=25)
    stale = {"state": "done", "status_code": 200, "body": b"stale", "headers": {"Content-Type": "text/plain"}}
    _record(
        alice, "old", fingerprint=fingerprint, created_at=past, expires_at=past + timedelta(hours=24), **stale
    )
    response = _post(alice_http, "/chat/completions", raw, "old")
    assert response.status_code == 200 and response.content != b"stale"
    assert "Idempotent-Replayed" not in response.headers
    assert GatewayRequest.objects.count() == 1
    fresh = IdempotencyRecord.objects.get(key="old")
    assert fresh.request_id == response.headers["X-Request-Id"] and fresh.expires_at > timezone.now()


def test_racing_requests_with_one_key_run_once(alice_http, fake_upstream):
    fake_upstream.control(model="gpt-4o-mini", delay_ms=1500)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: _post(alice_http, "/chat/completions", CHAT, "race"), range(4)))
    ran = [a for a in answers if a.status_code == 200 and "Idempotent-Replayed" not in a.headers]
    assert len(ran) == 1, [(a.status_code, a.text) for a in answers]
    for other in answers:
        if other is not ran[0]:
            assert other.status_code == 409 or other.headers.get("Idempotent-Replayed") == "true"
    assert GatewayRequest.objects.count() == 1 and len(fake_upstream.requests()) == 1
    replay = _post(alice_http, "/chat/completions", CHAT, "race")
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.content == ran[0].content


# ----------------------------------------------------------------------------------------- compare and batch


def test_a_retried_comparison_is_the_same_comparison_charged_once(fanout, alice_http, alice):
    body = {"messages": HELLO, "models": ["gpt-4o-mini", "claude-haiku-3.5"], "max_tokens": 20}
    first = _post(alice_http, "/chat/compare", body, "compare-1")
    assert first.status_code == 200, first.text
    again = _post(alice_http, "/chat/compare", body, "compare-1")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert Comparison.objects.count() == 1 and GatewayRequest.objects.count() == 2
    assert _spent(alice) == sum(r.total_cost_usd for r in GatewayRequest.objects.all()) > 0


def test_a_retried_batch_is_the_same_batch_never_a_second_one(fanout, alice_http, alice):
    body = {"requests": [{"messages": HELLO}], "model": "gpt-4o-mini", "max_tokens": 20, "wait": False}
    first = _post(alice_http, "/chat/batch", body, "batch-1")
    assert first.status_code == 202, first.text
    again = _post(alice_http, "/chat/batch", body, "batch-1")
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["batch_id"] == first.json()["batch_id"]
    assert BatchJob.objects.count() == 1
    deadline = time.monotonic() + 60
    while BatchJob.objects.get().status != "completed":
        assert time.monotonic() < deadline, "the batch did not complete"
        time.sleep(0.2)
    assert GatewayRequest.objects.count() == 1
    assert _spent(alice) == GatewayRequest.objects.get().total_cost_usd > 0


# ------------------------------------------------------------------------------------------------- clean-up


def test_expired_records_are_purged_hourly(alice):
    api_key, _ = api_key_issue(user=alice, name="purge")
    now = timezone.now()
    for key, expires in (("gone", now - timedelta(seconds=1)), ("kept", now + timedelta(hours=1))):
        IdempotencyRecord.objects.create(api_key=api_key, key=key, request_id="req_x", expires_at=expires)
    assert idempotency_records_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["kept"]
    import routing.tasks  # noqa: F401 - registers the tasks, as the worker's autodiscovery does

    entry = app.conf.beat_schedule["purge-idempotency-records"]
    assert entry["task"] == "routing.tasks.idempotency_records_purge_task" and entry["task"] in app.tasks
    assert entry["schedule"] == 3600.0


def test_the_schema_documents_the_header_on_every_spending_post(client, db):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/responses",
        "/v1/chat/compare",
        "/v1/chat/batch",
    ):
        operation = paths[path]["post"]
        assert "Idempotency-Key" in [p["name"] for p in operation["parameters"] if p["in"] == "header"]
        envelope = "AnthropicError" if path == "/v1/messages" else "Error"
        for status in ("409", "422"):
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{envelope}"}, (path, status)
    assert "parameters" not in paths["/v1/messages/count_tokens"]["post"]
