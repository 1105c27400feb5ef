"""End to end: the response cache, through a live gateway in front of the fake upstream."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import redis
from django.conf import settings

from accounts.models import User
from accounts.services import api_key_issue
from budgets.limits import budget_limit_set
from budgets.models import Budget
from routing.models import GatewayRequest
from routing.tests.live import LiveGateway, live_database_url

pytestmark = pytest.mark.e2e
HELLO = [{"role": "user", "content": "What is the capital of France?"}]
BODY: dict[str, Any] = {"model": "gpt-4o-mini", "messages": HELLO, "temperature": 0}


def _post(gateway: Any, key: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}", **headers},
        json=body,
        timeout=30,
    )
    return response


def _ok(gateway: Any, key: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    response = _post(gateway, key, body, **headers)
    assert response.status_code == 200, response.text
    return response


def _stream(gateway: Any, key: str, body: dict[str, Any]) -> tuple[httpx.Headers, list[dict[str, Any]]]:
    """The response headers and every `data:` event (the final [DONE] as {"done": True})."""
    events: list[dict[str, Any]] = []
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={**body, "stream": True},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                payload = line.removeprefix("data: ")
                events.append({"done": True} if payload == "[DONE]" else orjson.loads(payload))
        return response.headers, events


def _text(events: list[dict[str, Any]]) -> str:
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))


def _cache(response: httpx.Response) -> str:
    return response.headers["X-Router-Cache"]


def _row(request_id: str) -> GatewayRequest:
    return GatewayRequest.objects.get(pk=request_id)


def _stored_keys(*, scope: str) -> list[bytes]:
    assert settings.REDIS_URL
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return list(client.scan_iter(match=f"router:cache:{scope}:*"))
    finally:
        client.close()


def _user_with_key(username: str, *, cache_group: str = "") -> tuple[User, str]:
    user = User.objects.create_user(username=username, cache_group=cache_group)
    return user, api_key_issue(user=user, name=f"{username}-key")[1]


# --------------------------------------------------------------------------------------------- hits


def test_the_same_request_twice_is_a_free_logged_hit_with_a_new_id(sdk, fake_upstream, alice):
    first = sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HELLO, temperature=0)
    second = sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HELLO, temperature=0)
    miss, hit = first.parse(), second.parse()

    assert first.headers["X-Router-Cache"] == "miss" and miss.model_extra["cached"] is False
    assert second.headers["X-Router-Cache"] == "hit" and hit.model_extra["cached"] is True
    assert len(fake_upstream.requests()) == 1
    assert hit.id != miss.id and hit.id.startswith("req_")
    assert second.headers["X-Request-Id"] == hit.id
    assert hit.choices[0].message.content == miss.choices[0].message.content
    assert hit.choices[0].finish_reason == "stop" and hit.model == "gpt-4o-mini"
    assert hit.usage.prompt_tokens == miss.usage.prompt_tokens
    assert hit.usage.completion_tokens == miss.usage.completion_tokens
    for money in ("input_cost_usd", "output_cost_usd", "total_cost_usd"):
        assert hit.usage.model_extra[money] == 0
    assert Decimal(second.headers["X-Router-Cost-Usd"]) == 0
    assert [a["status"] for a in hit.model_extra["attempts"]] == ["cache_hit"]

    original, cached = _row(miss.id), _row(hit.id)
    assert original.cached is False and original.cache_savings_usd == 0 and original.total_cost_usd > 0
    assert cached.cached is True and cached.status == "success" and cached.http_status == 200
    assert cached.total_cost_usd == cached.input_cost_usd == cached.output_cost_usd == 0
    assert cached.cache_savings_usd == original.total_cost_usd
    assert cached.model == "gpt-4o-mini" and cached.provider == "openai"
    assert cached.response_text == original.response_text
    assert cached.latency_ms < original.latency_ms + 1000  # its own latency, not the original's
    assert cached.attempts.get().status == "cache_hit"
    budget = Budget.objects.get(user=alice)
    assert budget.spent_usd == original.total_cost_usd and budget.reserved_usd == 0


def test_a_hit_renders_money_positionally(e2e, alice_key):
    _ok(e2e, alice_key, BODY)
    hit = _ok(e2e, alice_key, BODY)
    assert _cache(hit) == "hit"
    assert hit.headers["X-Router-Cost-Usd"] == "0"
    assert '"total_cost_usd":0,' in hit.text


def test_temperature_zero_and_point_seven_are_different_entries(e2e, alice_key, fake_upstream):
    cold = _ok(e2e, alice_key, {**BODY, "temperature": 0})
    warm = _ok(e2e, alice_key, {**BODY, "temperature": 0.7})
    assert (_cache(cold), _cache(warm)) == ("miss", "miss")
    assert len(fake_upstream.requests()) == 2
    assert _cache(_ok(e2e, alice_key, {**BODY, "temperature": 0.7})) == "hit"
    assert _cache(_ok(e2e, alice_key, {**BODY, "temperature": 0})) == "hit"
    assert len(fake_upstream.requests()) == 2


def test_stream_and_user_fields_do_not_split_entries(e2e, alice_key, fake_upstream):
    _ok(e2e, alice_key, {**BODY, "user": "end-user-1"})
    assert _cache(_ok(e2e, alice_key, {**BODY, "user": "end-user-2"})) == "hit"
    assert len(fake_upstream.requests()) == 1


def test_a_different_model_is_a_different_entry(e2e, alice_key, fake_upstream):
    _ok(e2e, alice_key, BODY)
    assert _cache(_ok(e2e, alice_key, {**BODY, "model": "gpt-4o"})) == "miss"
    assert len(fake_upstream.requests()) == 2


def test_an_alias_and_its_model_id_share_the_entry(e2e, alice_key, fake_upstream):
    _ok(e2e, alice_key, {**BODY, "model": "claude-sonnet-4.5"})
    hit = _ok(e2e, alice_key, {**BODY, "model": "claude-sonnet-4-5-20250929"})
    assert _cache(hit) == "hit"
    assert len(fake_upstream.requests()) == 1


# --------------------------------------------------------------------------------------------- who shares


def test_user_b_never_gets_user_as_entry(e2e, alice_key, bob_key, bob, fake_upstream):
    fake_upstream.control(model="gpt-4o-mini", answer="Alice's private answer", times=1)
    alices = _ok(e2e, alice_key, BODY)
    bobs = _ok(e2e, bob_key, BODY)
    assert alices.json()["content"] == "Alice's private answer"
    assert _cache(bobs) == "miss" and bobs.json()["cached"] is False
    assert bobs.json()["content"] != "Alice's private answer"
    assert len(fake_upstream.requests()) == 2
    again = _ok(e2e, bob_key, BODY)  # bob's own entry does serve bob
    assert _cache(again) == "hit" and again.json()["content"] == bobs.json()["content"]
    assert _stored_keys(scope=f"user:{bob.pk}") and len(_stored_keys(scope=f"user:{bob.pk}")) == 1


def test_users_in_the_same_cache_group_share_and_other_groups_do_not(e2e, fake_upstream):
    _, ann = _user_with_key("ann", cache_group="research")
    _, ben = _user_with_key("ben", cache_group="research")
    _, cat = _user_with_key("cat", cache_group="sales")
    _, dan = _user_with_key("dan")
    first = _ok(e2e, ann, BODY)
    shared = _ok(e2e, ben, BODY)
    assert (_cache(first), _cache(shared)) == ("miss", "hit")
    assert shared.json()["content"] == first.json()["content"]
    assert _row(shared.json()["id"]).cache_savings_usd == _row(first.json()["id"]).total_cost_usd
    assert _cache(_ok(e2e, cat, BODY)) == "miss"
    assert _cache(_ok(e2e, dan, BODY)) == "miss"  # no group: private
    assert len(fake_upstream.requests()) == 3
    assert len(_stored_keys(scope="group:research")) == 1


# --------------------------------------------------------------------------------------------- opting out


def test_no_cache_goes_to_the_provider_and_refreshes_the_entry(e2e, alice_key, fake_upstream):
    _ok(e2e, alice_key, BODY)
    fake_upstream.control(model="gpt-4o-mini", answer="A fresher answer", times=1)
    fresh = _ok(e2e, alice_key, BODY, **{"Cache-Control": "no-cache"})
    assert _cache(fresh) == "bypass" and fresh.json()["cached"] is False
    assert fresh.json()["content"] == "A fresher answer"
    assert len(fake_upstream.requests()) == 2
    later = _ok(e2e, alice_key, BODY)
    assert _cache(later) == "hit" and later.json()["content"] == "A fresher answer"


def test_no_store_does_not_write(e2e, alice_key, alice, fake_upstream):
    unstored = _ok(e2e, alice_key, BODY, **{"Cache-Control": "no-store"})
    assert unstored.json()["cached"] is False
    assert _stored_keys(scope=f"user:{alice.pk}") == []
    assert _cache(_ok(e2e, alice_key, BODY)) == "miss"
    assert len(fake_upstream.requests()) == 2


def test_no_store_still_reads_a_stored_answer(e2e, alice_key, fake_upstream):
    _ok(e2e, alice_key, BODY)
    served = _ok(e2e, alice_key, BODY, **{"Cache-Control": "no-store"})
    assert _cache(served) == "hit" and served.json()["cached"] is True
    assert len(fake_upstream.requests()) == 1


def test_the_cache_false_body_flag_neither_reads_nor_writes(e2e, alice_key, alice, fake_upstream):
    off = _ok(e2e, alice_key, {**BODY, "cache": False})
    assert _cache(off) == "bypass"
    assert _stored_keys(scope=f"user:{alice.pk}") == []
    _ok(e2e, alice_key, BODY)  # stores
    again_off = _ok(e2e, alice_key, {**BODY, "cache": False})
    assert _cache(again_off) == "bypass" and again_off.json()["cached"] is False
    assert len(fake_upstream.requests()) == 3


def test_a_non_boolean_cache_flag_is_a_400(e2e, alice_key):
    response = _post(e2e, alice_key, {**BODY, "cache": "no"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "cache"


# --------------------------------------------------------------------------------------------- failures


def test_a_502_stores_nothing(e2e, alice_key, alice, fake_upstream):
    fake_upstream.control(model="gpt-4o-mini", status=503)
    failed = _post(e2e, alice_key, BODY)
    assert failed.status_code == 502
    assert _stored_keys(scope=f"user:{alice.pk}") == []
    fake_upstream.clear()
    after = _ok(e2e, alice_key, BODY)
    assert _cache(after) == "miss" and after.json()["cached"] is False
    assert len(fake_upstream.requests()) == 1
    assert GatewayRequest.objects.filter(cached=True).count() == 0


def test_a_provider_400_is_not_cached(e2e, alice_key, fake_upstream):
    fake_upstream.control(model="gpt-4o-mini", status=400, message="bad request", times=1)
    assert _post(e2e, alice_key, BODY).status_code == 400
    assert _cache(_ok(e2e, alice_key, BODY)) == "miss"


def test_a_stream_cut_short_is_not_stored(e2e, alice_key, alice, fake_upstream):
    fake_upstream.control(model="gpt-4o-mini", disconnect_after_chunks=3, times=1)
    _, events = _stream(e2e, alice_key, BODY)
    assert "error" in events[-2]
    assert _stored_keys(scope=f"user:{alice.pk}") == []
    assert _cache(_ok(e2e, alice_key, BODY)) == "miss"


def test_an_entry_belongs_to_the_model_that_answered_not_the_one_asked_for(e2e, alice_key, fake_upstream):
    fake_upstream.control(model="claude-sonnet-4-5-20250929", status=529)
    body = {**BODY, "model": "claude-sonnet-4.5", "fallbacks": ["gpt-4o-mini"]}
    fell_back = _ok(e2e, alice_key, body)
    assert fell_back.json()["model"] == "gpt-4o-mini"
    # the fallback's answer is the gpt-4o-mini entry ...
    assert _cache(_ok(e2e, alice_key, BODY)) == "hit"
    # ... and never served to someone asking for claude once claude answers again
    fake_upstream.clear()
    claude = _ok(e2e, alice_key, body)
    assert _cache(claude) == "miss" and claude.json()["model"] == "claude-sonnet-4-5-20250929"
    assert len(fake_upstream.requests()) == 1


def test_an_answer_shortened_to_fit_the_budget_never_serves_the_full_request(
    e2e, alice_key, alice, fake_upstream
):
    body = {**BODY, "model": "gpt-4o", "max_tokens": 4000, "budget_policy": "fit"}
    # Room for the prompt's upper bound and some output, far from 4,000 tokens of it.
    budget_limit_set(user_id=alice.pk, limit_usd=Decimal("0.001"))
    fitted = _ok(e2e, alice_key, body)
    applied = fitted.json()["max_tokens_applied"]
    assert fitted.json()["budget_fitted"] is True and applied < 4000
    budget_limit_set(user_id=alice.pk, limit_usd=None)
    full = _ok(e2e, alice_key, body)
    assert _cache(full) == "miss" and "budget_fitted" not in full.json()
    # the shortened answer is the entry of what was actually sent: that many max_tokens
    assert _cache(_ok(e2e, alice_key, {**BODY, "model": "gpt-4o", "max_tokens": applied})) == "hit"
    assert len(fake_upstream.requests()) == 2


# --------------------------------------------------------------------------------------------- streams


def test_a_streamed_answer_is_stored_and_replayed_as_a_stream(e2e, alice_key, fake_upstream):
    body = {**BODY, "stream_options": {"include_usage": True}}
    headers, original = _stream(e2e, alice_key, body)
    assert headers["X-Router-Cache"] == "miss"
    text = _text(original)
    assert text.startswith("This is a fake answer from gpt-4o-mini")

    hit_headers, replayed = _stream(e2e, alice_key, body)
    assert hit_headers["X-Router-Cache"] == "hit"
    assert len(fake_upstream.requests()) == 1
    assert replayed[-1] == {"done": True}
    chunks = replayed[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert {c["id"] for c in chunks} == {hit_headers["X-Request-Id"]} != {original[0]["id"]}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert _text(chunks) == text
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"]["total_cost_usd"] == 0
    assert usage["usage"]["completion_tokens"] == original[-2]["usage"]["completion_tokens"]

    row = _row(hit_headers["X-Request-Id"])
    assert row.cached is True and row.stream is True and row.status == "success"
    assert row.cache_savings_usd == _row(original[0]["id"]).total_cost_usd > 0


def test_a_streamed_answer_also_serves_a_plain_request_and_the_sdks_stream(
    sdk, e2e, alice_key, fake_upstream
):
    _, original = _stream(e2e, alice_key, BODY)
    text = _text(original)
    plain = _ok(e2e, alice_key, BODY)
    assert _cache(plain) == "hit" and plain.json()["content"] == text
    assert plain.json()["choices"][0]["finish_reason"] == "stop"
    stream = sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO, temperature=0, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert len(fake_upstream.requests()) == 1


def test_a_non_streamed_answer_is_replayed_to_a_streaming_request(e2e, alice_key, fake_upstream):
    plain = _ok(e2e, alice_key, BODY)
    headers, replayed = _stream(e2e, alice_key, BODY)
    assert headers["X-Router-Cache"] == "hit"
    text = _text(replayed)
    assert text == plain.json()["content"]
    assert len(fake_upstream.requests()) == 1


# --------------------------------------------------------------------------------------------- routing modes


def test_cost_optimized_mode_hits_the_entry_of_the_model_it_chooses(e2e, alice_key, fake_upstream):
    auto = _ok(e2e, alice_key, {**BODY, "model": "auto"})
    chosen = auto.json()["model"]
    assert auto.json()["selection_mode"] == "cost-optimized" and _cache(auto) == "miss"
    manual = _ok(e2e, alice_key, {**BODY, "model": chosen})
    assert _cache(manual) == "hit" and manual.json()["model"] == chosen
    again = _ok(e2e, alice_key, {**BODY, "model": "auto"})
    assert _cache(again) == "hit" and again.json()["selection_mode"] == "cost-optimized"
    assert len(fake_upstream.requests()) == 1


def test_cost_optimized_mode_reuses_an_entry_a_manual_request_made(e2e, alice_key, fake_upstream):
    chosen = _ok(e2e, alice_key, {**BODY, "model": "auto", "cache": False}).json()["model"]
    _ok(e2e, alice_key, {**BODY, "model": chosen})
    assert _cache(_ok(e2e, alice_key, {**BODY, "mode": "cost-optimized", "model": "auto"})) == "hit"
    assert len(fake_upstream.requests()) == 2


# --------------------------------------------------------------------------------------------- Redis down


def test_with_redis_unreachable_the_request_still_succeeds_bypassing_the_cache(e2e, alice_key, fake_upstream):
    # Nothing listens on port 1; small pools, since this gateway runs beside the session's own.
    env = {
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "ROUTER_UPSTREAM_TIMEOUT_S": "2",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "4",
        "DB_ASYNC_POOL_MAX": "4",
    }
    with LiveGateway(database_url=live_database_url(), upstream=fake_upstream, env=env) as no_redis:
        first = _ok(no_redis, alice_key, BODY)
        second = _ok(no_redis, alice_key, BODY)
        headers, events = _stream(no_redis, alice_key, BODY)
    assert (_cache(first), _cache(second), headers["X-Router-Cache"]) == ("bypass", "bypass", "bypass")
    assert second.json()["cached"] is False
    assert events[-1] == {"done": True}
    assert len(fake_upstream.requests()) == 3
    assert GatewayRequest.objects.filter(status="success", cached=False).count() == 3
