"""/metrics exposes the gateway's counters in Prometheus format, with model and provider labels."""

import httpx
import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e
HELLO = [{"role": "user", "content": "metrics please"}]


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _delta(before, after, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_metrics_count_requests_tokens_cost_cache_hits_and_errors(sdk, e2e, fake_upstream):
    before = _scrape(e2e.url)
    first = sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO, temperature=0)
    sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO, temperature=0)  # a cache hit
    fake_upstream.control(model="deepseek-chat", status=500, times=1)
    sdk.chat.completions.create(model="deepseek-chat", messages=HELLO)  # one retry, then success
    after = _scrape(e2e.url)

    ok = {"door": "chat", "model": "gpt-4o-mini", "provider": "openai", "status": "success"}
    assert _delta(before, after, "router_requests_total", **ok, cached="false") == 1
    assert _delta(before, after, "router_requests_total", **ok, cached="true") == 1
    assert _delta(before, after, "router_cache_hits_total", model="gpt-4o-mini") == 1
    assert _delta(
        before, after, "router_tokens_total", model="gpt-4o-mini", provider="openai", kind="input"
    ) == (first.usage.prompt_tokens)
    cost = _delta(before, after, "router_cost_usd_total", model="gpt-4o-mini", provider="openai")
    assert cost == pytest.approx(first.usage.model_extra["total_cost_usd"])
    assert (
        _delta(
            before,
            after,
            "router_upstream_errors_total",
            model="deepseek-chat",
            provider="deepseek",
            status="500",
        )
        == 1
    )
    assert _delta(before, after, "router_retries_total", model="deepseek-chat", provider="deepseek") == 1
    assert (
        _delta(
            before,
            after,
            "router_request_latency_seconds_count",
            door="chat",
            model="deepseek-chat",
            provider="deepseek",
        )
        == 1
    )
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    assert ("router_celery_queue_depth", (("queue", queue),)) in after


def test_metrics_count_budget_and_rate_limit_refusals(e2e, alice, alice_key):
    from budgets.limits import budget_limit_set

    budget_limit_set(user_id=alice.pk, limit_usd=0)
    before = _scrape(e2e.url)
    response = httpx.post(
        e2e.url + "/v1/chat/completions",
        headers={"X-API-Key": alice_key},
        json={"model": "gpt-4o", "messages": HELLO},
        timeout=10,
    )
    assert response.status_code == 402
    after = _scrape(e2e.url)
    assert _delta(before, after, "router_budget_refusals_total") == 1
