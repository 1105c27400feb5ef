"""Sliding rate-limit windows: requests and tokens per minute, per key and per team, all or none in one script,
across processes; tokens settled to the actual count; OpenAI's x-ratelimit headers on every door.

The unit tests give the scripts their clock (`now`), so a minute passes in no time; the live tests move what a
window holds a minute into the past (`age`) rather than wait for it.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from accounts.authentication import Principal
from accounts.services import api_key_issue, team_create
from config.api_errors import RateLimited
from routing.models import BatchJob, Comparison, GatewayRequest
from routing.ratelimit import (
    Limit,
    duration,
    rate_limit_check,
    rate_limit_release,
    rate_limit_settle,
    rate_limits_of,
)
from routing.tests.live import LiveGateway, live_database_url
from routing.tests.rate_windows import age, counted, forget_scripts

HELLO = [{"role": "user", "content": "What is the capital of France?"}]
BOUNDARY = 60.0 * 66_666_666  # a minute boundary (in 2096): where a fixed window would start afresh
DURATION = re.compile(r"^(\d+ms|\d+(\.\d+)?s|\d+m\d+(\.\d+)?s)$")


def _key(rpm: int | None = None, tpm: int | None = None, key_id: int = 1) -> tuple[Limit, ...]:
    return (Limit("key", key_id, rpm, tpm),)


async def _counted(scope: str, scope_id: int) -> tuple[int, int]:
    return await asyncio.to_thread(counted, scope, scope_id)


# --------------------------------------------------------------------------------------------- sliding


async def test_requests_across_a_minute_boundary_never_get_twice_the_limit():
    limits = _key(rpm=5)
    for _ in range(5):
        await rate_limit_check(limits, now=BOUNDARY - 0.5)
    for later in (0.5, 30, 59.4):  # a fixed window would let 5 more through from BOUNDARY on
        with pytest.raises(RateLimited) as refused:
            await rate_limit_check(limits, now=BOUNDARY + later)
    assert refused.value.headers["Retry-After"] == "1"  # the five leave at BOUNDARY + 59.5
    for _ in range(5):  # exactly a minute after they came, they no longer count
        await rate_limit_check(limits, now=BOUNDARY + 59.5)
    with pytest.raises(RateLimited):
        await rate_limit_check(limits, now=BOUNDARY + 59.6)


async def test_no_minute_anywhere_holds_more_than_the_limit_and_nothing_is_refused_below_it():
    """Exact, not merely safe: 300 arrivals at random moments over five minutes against 7 RPM."""
    rng = random.Random(15)
    start_ms = int(BOUNDARY * 1000)
    moments = sorted(start_ms + rng.randrange(300_000) for _ in range(300))  # in ms
    limits = _key(rpm=7)
    admitted: list[int] = []
    for moment in moments:
        in_window = sum(1 for t in admitted if t > moment - 60_000)
        try:
            await rate_limit_check(limits, now=moment / 1000)
        except RateLimited:
            assert in_window == 7  # refused only when the last 60 s really hold 7
            continue
        assert in_window < 7
        admitted.append(moment)
    for t in admitted:
        assert sum(1 for u in admitted if t - 60_000 < u <= t) <= 7
    assert len(admitted) > 30  # it did admit a steady flow


async def test_retry_after_is_when_the_request_would_fit():
    limits = _key(rpm=2, tpm=1000)
    await rate_limit_check(limits, tokens=(400,), now=BOUNDARY)
    await rate_limit_check(limits, tokens=(400,), now=BOUNDARY + 20)
    with pytest.raises(RateLimited) as by_requests:
        await rate_limit_check(limits, tokens=(1,), now=BOUNDARY + 30)
    assert by_requests.value.headers["Retry-After"] == "30"  # the first request leaves at BOUNDARY + 60
    limits = _key(tpm=1000, key_id=2)
    await rate_limit_check(limits, tokens=(400,), now=BOUNDARY)
    await rate_limit_check(limits, tokens=(400,), now=BOUNDARY + 20)
    with pytest.raises(RateLimited) as by_tokens:  # 800 + 500 > 1000: 300 must leave, the first 400 do
        await rate_limit_check(limits, tokens=(500,), now=BOUNDARY + 30)
    assert by_tokens.value.headers["Retry-After"] == "30"
    assert "1000 tokens per minute" in by_tokens.value.message
    with pytest.raises(RateLimited) as both:  # 800 + 700: both entries must leave, the second at +80
        await rate_limit_check(limits, tokens=(700,), now=BOUNDARY + 30)
    assert both.value.headers["Retry-After"] == "50"


# --------------------------------------------------------------------------------------------- tokens


async def test_tokens_per_minute_hold_and_the_actual_count_gives_tokens_back():
    limits = _key(tpm=1000)
    first = await rate_limit_check(limits, tokens=(600,), members=("req_a",), now=BOUNDARY)
    assert first is not None and first.headers["x-ratelimit-remaining-tokens"] == "400"
    with pytest.raises(RateLimited) as refused:
        await rate_limit_check(limits, tokens=(500,), now=BOUNDARY + 1)
    assert refused.value.extra["limit_tpm"] == 1000 and refused.value.extra["scope"] == "key"
    assert await _counted("key", 1) == (1, 600)  # the refused request counted nothing
    await rate_limit_settle(keys=first.keys, member="req_a", tokens=100, now=BOUNDARY + 2)  # it used 100
    assert await _counted("key", 1) == (1, 100)
    assert await rate_limit_check(limits, tokens=(500,), now=BOUNDARY + 3) is not None
    await rate_limit_settle(keys=first.keys, member="req_a", tokens=450, now=BOUNDARY + 4)  # or more
    assert await _counted("key", 1) == (2, 950)
    await rate_limit_settle(keys=first.keys, member="req_a", tokens=0, now=BOUNDARY + 61)  # left the window
    assert await rate_limit_check(limits, tokens=(500,), now=BOUNDARY + 61) is not None
    assert await _counted("key", 1) == (2, 1000)


async def test_more_tokens_than_the_limit_at_once_are_refused_and_say_so():
    with pytest.raises(RateLimited) as refused:
        await rate_limit_check(_key(tpm=1000), requests=3, tokens=(400, 400, 400), now=BOUNDARY)
    assert "1200 tokens" in refused.value.message and "smaller parts" in refused.value.message
    assert refused.value.headers["Retry-After"] == "60"
    assert await _counted("key", 1) == (0, 0)


def _principal(key_id: int, team_id: int | None = None, **limits: int | None) -> Principal:
    return Principal(
        user_id=1,
        key_id=key_id,
        team_id=team_id,
        username="u",
        is_staff=False,
        rate_limit_rpm=limits.get("rpm"),
        rate_limit_tpm=limits.get("tpm"),
        cache_group="",
        team_rate_limit_rpm=limits.get("team_rpm"),
        team_rate_limit_tpm=limits.get("team_tpm"),
    )


async def test_a_team_key_counts_against_its_key_and_its_team_all_or_none(settings):
    settings.ROUTER_RATE_LIMIT_RPM = None
    settings.ROUTER_RATE_LIMIT_TPM = None
    limits = rate_limits_of(_principal(1, team_id=9, rpm=10, team_tpm=100))
    assert limits == (Limit("key", 1, 10, None), Limit("team", 9, None, 100))
    with pytest.raises(
        RateLimited
    ) as refused:  # the team's tokens refuse it: the key's requests don't count it
        await rate_limit_check(limits, tokens=(150,), now=BOUNDARY)
    assert "team" in refused.value.message and refused.value.extra["scope"] == "team"
    assert await _counted("key", 1) == (0, 0)
    admitted = await rate_limit_check(limits, tokens=(60,), now=BOUNDARY)
    assert admitted is not None
    assert await _counted("key", 1) == (1, 60) and await _counted("team", 9) == (1, 60)
    with pytest.raises(RateLimited):
        await rate_limit_check(limits, tokens=(60,), now=BOUNDARY + 1)
    assert await _counted("key", 1) == (1, 60)
    await rate_limit_release(admitted)  # given back everywhere, tokens included
    assert await _counted("key", 1) == (0, 0) and await _counted("team", 9) == (0, 0)


async def test_team_requests_per_minute_are_shared_by_every_key_of_the_team(settings):
    settings.ROUTER_RATE_LIMIT_RPM = None
    one = rate_limits_of(_principal(1, team_id=9, team_rpm=3))
    two = rate_limits_of(_principal(2, team_id=9, team_rpm=3))
    assert one == (Limit("team", 9, 3, None),)  # no limit of the key's own, no default: the team's only
    await rate_limit_check(one, now=BOUNDARY)
    await rate_limit_check(two, now=BOUNDARY)
    await rate_limit_check(one, now=BOUNDARY)
    with pytest.raises(RateLimited) as refused:
        await rate_limit_check(two, now=BOUNDARY + 1)
    assert (
        refused.value.message
        == "Rate limit of 3 requests per minute reached for this API key's team (team 9)"
    )


async def test_the_defaults_apply_to_keys_without_limits_of_their_own_and_never_to_teams(settings):
    settings.ROUTER_RATE_LIMIT_RPM = 100
    settings.ROUTER_RATE_LIMIT_TPM = 50_000
    assert rate_limits_of(_principal(1)) == (Limit("key", 1, 100, 50_000),)
    assert rate_limits_of(_principal(1, rpm=5, tpm=10)) == (Limit("key", 1, 5, 10),)
    assert rate_limits_of(_principal(1, team_id=9)) == (Limit("key", 1, 100, 50_000),)


# --------------------------------------------------------------------------------------------- headers


def test_resets_are_in_openais_duration_format():
    assert [duration(ms) for ms in (0, 20, 1000, 8640, 59_999, 60_000, 61_500, 360_000)] == [
        "0ms",
        "20ms",
        "1s",
        "8.64s",
        "59.999s",
        "1m0s",
        "1m1.5s",
        "6m0s",
    ]


async def test_the_headers_show_the_tightest_scope_and_a_refusal_carries_them():
    limits = (Limit("key", 1, 10, 5000), Limit("team", 9, 3, None))
    admitted = await rate_limit_check(limits, tokens=(1200,), now=BOUNDARY)
    assert admitted is not None
    assert (
        admitted.headers
        == {
            "x-ratelimit-limit-requests": "3",  # the team's 3 are tighter than the key's 10
            "x-ratelimit-remaining-requests": "2",
            "x-ratelimit-reset-requests": "1m0s",  # a sliding window is back to empty a minute after its last entry
            "x-ratelimit-limit-tokens": "5000",
            "x-ratelimit-remaining-tokens": "3800",
            "x-ratelimit-reset-tokens": "1m0s",
        }
    )
    await rate_limit_check(limits, tokens=(100,), now=BOUNDARY + 10)
    await rate_limit_check(limits, tokens=(100,), now=BOUNDARY + 20)
    with pytest.raises(RateLimited) as refused:
        await rate_limit_check(limits, tokens=(100,), now=BOUNDARY + 30)
    assert refused.value.headers == {
        "Retry-After": "30",
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "50s",
        "x-ratelimit-limit-tokens": "5000",
        "x-ratelimit-remaining-tokens": "3600",
        "x-ratelimit-reset-tokens": "50s",
    }


# --------------------------------------------------------------------------------------------- two processes


@pytest.fixture(scope="module")
def two_processes(django_db_setup, django_db_blocker, fake_upstream):
    with django_db_blocker.unblock():
        url = live_database_url()
    with (
        LiveGateway(database_url=url, upstream=fake_upstream) as first,
        LiveGateway(database_url=url, upstream=fake_upstream) as second,
    ):
        yield first, second


@pytest.fixture
def gateways(transactional_db, catalog, fake_upstream, two_processes):
    fake_upstream.clear()
    yield two_processes
    fake_upstream.clear()


def _chat(gateway: LiveGateway, client: httpx.Client, key: str, **extra: Any) -> httpx.Response:
    return client.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 5, "cache": False, **extra},
    )


def _all_at_once(gateways: tuple[LiveGateway, LiveGateway], key: str, n: int) -> list[httpx.Response]:
    """n chat requests released together, alternating between the two processes."""
    start = threading.Barrier(n)

    def one(i: int) -> httpx.Response:
        with httpx.Client(timeout=30) as client:
            start.wait()
            return _chat(gateways[i % 2], client, key)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


@pytest.mark.e2e
def test_20_concurrent_requests_at_5_rpm_on_two_processes_let_exactly_5_through(
    gateways, fake_upstream, alice
):
    api_key, key = api_key_issue(user=alice, name="five", rate_limit_rpm=5)
    responses = _all_at_once(gateways, key, 20)
    assert sorted(r.status_code for r in responses) == [200] * 5 + [429] * 15
    for refused in (r for r in responses if r.status_code == 429):
        error = refused.json()["error"]
        assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
        assert error["message"] == "Rate limit of 5 requests per minute reached for this API key"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert counted("key", api_key.pk)[0] == 5  # the 15 refused are not counted
    assert len(fake_upstream.requests()) == 5
    assert GatewayRequest.objects.filter(api_key=api_key).count() == 5

    age("key", api_key.pk, 60)  # the minute slides past the five
    again = _all_at_once(gateways, key, 20)
    assert sorted(r.status_code for r in again) == [200] * 5 + [429] * 15
    assert len(fake_upstream.requests()) == 10


def _estimate_and_actual(gateway: LiveGateway, alice) -> tuple[int, int]:
    """What one HELLO request counts at admission and after settling (the fake answers the same each time)."""
    _, probe = api_key_issue(user=alice, name="probe", rate_limit_tpm=1_000_000)
    with httpx.Client(timeout=30) as client:
        response = _chat(gateway, client, probe)
    assert response.status_code == 200, response.text
    estimate = 1_000_000 - int(response.headers["x-ratelimit-remaining-tokens"])
    actual = response.json()["usage"]["total_tokens"]
    assert 0 < actual < estimate
    return estimate, actual


@pytest.mark.e2e
def test_tokens_per_minute_hold_for_a_key_and_settling_gives_the_difference_back(gateways, alice):
    estimate, actual = _estimate_and_actual(gateways[0], alice)
    # Room for one estimate and one actual count: a second request fits only once the first has settled.
    api_key, key = api_key_issue(user=alice, name="tpm", rate_limit_tpm=estimate + actual)
    with httpx.Client(timeout=30) as client:
        first = _chat(gateways[0], client, key)
        assert first.status_code == 200
        assert first.headers["x-ratelimit-limit-tokens"] == str(estimate + actual)
        assert first.headers["x-ratelimit-remaining-tokens"] == str(actual)
        row = GatewayRequest.objects.get(pk=first.headers["X-Request-Id"])
        assert counted("key", api_key.pk) == (1, row.total_tokens) == (1, actual)  # settled to the actual
        second = _chat(gateways[1], client, key)
        assert second.status_code == 200, second.text
        third = _chat(gateways[0], client, key)
    assert third.status_code == 429
    assert third.json()["error"]["message"].startswith(
        f"Rate limit of {estimate + actual} tokens per minute reached for this API key"
    )
    assert third.headers["x-ratelimit-remaining-tokens"] == str(estimate - actual)
    assert counted("key", api_key.pk) == (2, 2 * actual)  # the refused one counted nothing


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True])
def test_tokens_are_settled_with_the_cache_entry_and_when_redis_has_forgotten_the_script(
    gateways, alice, stream
):
    """The settle rides in the answer's one Redis round trip (health sample, cache entry) by its SHA; a Redis
    that restarted since answers NOSCRIPT there, and the settle is sent again as the script itself."""
    api_key, key = api_key_issue(user=alice, name=f"settle-{stream}", rate_limit_tpm=1_000_000)
    with httpx.Client(timeout=30) as client:
        warm = _chat(gateways[0], client, key, cache=True, stream=stream)
        assert warm.status_code == 200, warm.text
        first_id = warm.headers["X-Request-Id"]
        forget_scripts()
        second = _chat(gateways[1], client, key, stream=stream)
        assert second.status_code == 200, second.text
        if stream:
            assert second.text.rstrip().endswith("data: [DONE]")
    rows = list(GatewayRequest.objects.filter(api_key=api_key).order_by("created_at"))
    assert len(rows) == 2 and rows[0].pk == first_id
    assert counted("key", api_key.pk) == (2, sum(row.total_tokens for row in rows))  # both settled to actual


def _team_keys(alice, bob, **limits: int) -> tuple[int, str, str]:
    team = team_create(name="crew", members=[alice, bob])
    team.rate_limit_rpm = limits.get("rpm")
    team.rate_limit_tpm = limits.get("tpm")
    team.save()
    _, one = api_key_issue(user=alice, name="crew-alice", team=team)
    _, two = api_key_issue(user=bob, name="crew-bob", team=team)
    return team.pk, one, two


@pytest.mark.e2e
def test_a_teams_requests_per_minute_are_shared_by_two_keys(gateways, fake_upstream, alice, bob):
    team_id, one, two = _team_keys(alice, bob, rpm=3)
    with httpx.Client(timeout=30) as client:
        statuses = [_chat(gateways[i % 2], client, (one, two)[i % 2]).status_code for i in range(3)]
        refused = [_chat(gateways[i % 2], client, (two, one)[i % 2]) for i in range(2)]
    assert statuses == [200, 200, 200]
    assert [r.status_code for r in refused] == [429, 429]
    assert refused[0].json()["error"]["message"] == (
        f"Rate limit of 3 requests per minute reached for this API key's team (team {team_id})"
    )
    assert refused[0].headers["x-ratelimit-limit-requests"] == "3"
    assert counted("team", team_id)[0] == 3
    assert len(fake_upstream.requests()) == 3


@pytest.mark.e2e
def test_a_teams_tokens_per_minute_hold_across_its_keys(gateways, alice, bob):
    estimate, actual = _estimate_and_actual(gateways[0], alice)
    team_id, one, two = _team_keys(alice, bob, tpm=estimate + actual)
    with httpx.Client(timeout=30) as client:
        assert _chat(gateways[0], client, one).status_code == 200
        assert _chat(gateways[1], client, two).status_code == 200  # fits because the first one settled
        refused = _chat(gateways[0], client, one)
    assert refused.status_code == 429
    assert "tokens per minute reached for this API key's team" in refused.json()["error"]["message"]
    assert counted("team", team_id) == (2, 2 * actual)


# --------------------------------------------------------------------------------------------- every door


def _door_request(door: str, *, stream: bool) -> tuple[str, dict[str, str], dict[str, Any]]:
    if door == "chat":
        body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 5, "cache": False}
        return "/v1/chat/completions", {}, {**body, "stream": stream}
    if door == "messages":
        body = {"model": "claude-haiku-3.5", "messages": HELLO, "max_tokens": 5, "stream": stream}
        return "/v1/messages", {"anthropic-version": "2023-06-01", "X-Router-Cache": "off"}, body
    body = {"model": "gpt-4o-mini", "input": HELLO[0]["content"], "max_output_tokens": 16, "stream": stream}
    return "/v1/responses", {"X-Router-Cache": "off"}, body


def _send(gateway: LiveGateway, client: httpx.Client, key: str, door: str, *, stream: bool) -> httpx.Response:
    path, headers, body = _door_request(door, stream=stream)
    with client.stream(
        "POST", gateway.url + path, headers={"Authorization": f"Bearer {key}", **headers}, json=body
    ) as response:
        response.read()  # a stream to its end: its headers came before the first event
        return response


def _assert_limit_headers(response: httpx.Response, *, remaining_requests: int, tpm: int) -> None:
    assert response.headers["x-ratelimit-limit-requests"] == "2"
    assert response.headers["x-ratelimit-remaining-requests"] == str(remaining_requests)
    assert DURATION.match(response.headers["x-ratelimit-reset-requests"])
    assert response.headers["x-ratelimit-limit-tokens"] == str(tpm)
    assert 0 < tpm - int(response.headers["x-ratelimit-remaining-tokens"]) < tpm
    assert DURATION.match(response.headers["x-ratelimit-reset-tokens"])


@pytest.mark.e2e
@pytest.mark.parametrize("door", ["chat", "messages", "responses"])
def test_every_door_answers_with_the_rate_limit_headers_and_refuses_in_its_own_envelope(
    gateways, alice, door
):
    tpm = 500_000
    _, key = api_key_issue(user=alice, name=door, rate_limit_rpm=2, rate_limit_tpm=tpm)
    _, unlimited = api_key_issue(user=alice, name="unlimited")
    with httpx.Client(timeout=30) as client:
        answered = _send(gateways[0], client, key, door, stream=False)
        streamed = _send(gateways[1], client, key, door, stream=True)
        refused = _send(gateways[0], client, key, door, stream=False)
        free = _send(gateways[1], client, unlimited, door, stream=False)

    assert answered.status_code == 200, answered.text
    _assert_limit_headers(answered, remaining_requests=1, tpm=tpm)
    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/event-stream")
    _assert_limit_headers(streamed, remaining_requests=0, tpm=tpm)

    assert refused.status_code == 429
    _assert_limit_headers(refused, remaining_requests=0, tpm=tpm)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    body = refused.json()
    if door == "messages":
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        assert body["request_id"] == refused.headers["request-id"]
    else:
        assert body["error"]["type"] == "rate_limit_error" and body["error"]["code"] == "rate_limit_exceeded"
    assert "2 requests per minute" in body["error"]["message"]

    assert free.status_code == 200  # no limit applies (no default either): no headers to show
    assert not [name for name in free.headers if name.startswith("x-ratelimit-")]


# --------------------------------------------------------------------------------------------- fan-outs


def _compare(gateway: LiveGateway, client: httpx.Client, key: str, models: list[str]) -> httpx.Response:
    return client.post(
        gateway.url + "/v1/chat/compare",
        headers={"Authorization": f"Bearer {key}"},
        json={"messages": HELLO, "models": models, "max_tokens": 5},
    )


@pytest.mark.e2e
def test_a_comparison_counts_its_models_estimates_against_tpm_and_is_refused_whole(gateways, alice):
    estimate, _ = _estimate_and_actual(gateways[0], alice)
    # Each model's estimate is the same prompt bound plus max_tokens 5: two fit, three don't.
    api_key, key = api_key_issue(user=alice, name="tpm", rate_limit_tpm=2 * estimate + 1)
    with httpx.Client(timeout=30) as client:
        refused = _compare(gateways[0], client, key, ["gpt-4o-mini", "deepseek-chat", "claude-haiku-3.5"])
        assert refused.status_code == 429, refused.text
        assert "These 3 requests count up to" in refused.json()["error"]["message"]
        assert refused.headers["x-ratelimit-remaining-tokens"] == str(2 * estimate + 1)
        assert counted("key", api_key.pk) == (0, 0)
        assert _chat(gateways[1], client, key).status_code == 200
    assert not Comparison.objects.exists()


def _batch(n: int, first: int = 0) -> dict[str, Any]:
    """n items, each its own question (none answered from the response cache)."""
    ask = "Batch question {:02d}: name a colour."
    items = [{"messages": [{"role": "user", "content": ask.format(i)}]} for i in range(first, first + n)]
    return {"requests": items, "model": "gpt-4o-mini", "max_tokens": 5}


@pytest.mark.e2e
@pytest.mark.usefixtures("live_worker")
def test_fan_outs_count_n_requests_and_n_estimates_all_or_none_and_settle_each_item(
    gateways, alice, fake_upstream
):
    api_key, key = api_key_issue(user=alice, name="fan", rate_limit_rpm=10, rate_limit_tpm=1_000_000)
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
        done = client.post(gateways[0].url + "/v1/chat/batch", json=_batch(3))
        assert done.status_code == 200, done.text
        assert done.headers["x-ratelimit-remaining-requests"] == "7"
        estimates = 1_000_000 - int(done.headers["x-ratelimit-remaining-tokens"])
        rows = GatewayRequest.objects.filter(batch_id=done.json()["batch_id"])
        actual = sum(row.total_tokens for row in rows)
        assert rows.count() == 3 and 0 < actual < estimates
        assert counted("key", api_key.pk) == (3, actual)  # each item settled by the worker that ran it

        compared = _compare(gateways[1], client, key, ["gpt-4o-mini", "deepseek-chat"])
        assert compared.status_code == 200, compared.text
        assert compared.headers["x-ratelimit-remaining-requests"] == "5"
        results = compared.json()["results"]
        assert [r["status"] for r in results] == ["success", "success"]
        actual += sum(r["usage"]["total_tokens"] for r in results)
        assert counted("key", api_key.pk) == (5, actual)

        upstream = len(fake_upstream.requests())
        too_many = client.post(gateways[1].url + "/v1/chat/batch", json=_batch(6, first=3))  # 5 + 6 > 10
        assert too_many.status_code == 429
        assert too_many.json()["error"]["message"] == (
            "6 requests do not fit in the 10 requests per minute allowed for this API key (5 left in the last minute)"
        )
        assert counted("key", api_key.pk) == (5, actual)  # nothing of it counted
        assert len(fake_upstream.requests()) == upstream
    assert BatchJob.objects.count() == 1


@pytest.mark.e2e
@pytest.mark.usefixtures("live_worker")
def test_a_batch_over_the_tokens_per_minute_is_refused_whole(gateways, alice):
    estimate, _ = _estimate_and_actual(gateways[0], alice)
    api_key, key = api_key_issue(user=alice, name="tpm", rate_limit_tpm=estimate * 5)
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
        refused = client.post(gateways[0].url + "/v1/chat/batch", json={**_batch(8), "wait": False})
    assert refused.status_code == 429, refused.text
    assert "tokens per minute" in refused.json()["error"]["message"]
    assert counted("key", api_key.pk) == (0, 0)
    assert not BatchJob.objects.exists()
