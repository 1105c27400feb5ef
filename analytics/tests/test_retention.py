"""retention_apply: old prompts and responses are cleared; tokens, cost and latency stay for analytics."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.selectors import usage_summary
from analytics.services import retention_apply
from analytics.tasks import retention_apply_task
from analytics.tests.factories import GatewayRequestFactory
from routing.models import Comparison, GatewayRequest

pytestmark = pytest.mark.django_db


def test_nothing_is_cleared_when_retention_is_unset(alice, settings):
    settings.ROUTER_LOG_RETENTION_DAYS = None
    row = GatewayRequestFactory(user=alice, created_at=timezone.now() - timedelta(days=400))
    assert retention_apply().requests_cleared == 0
    row.refresh_from_db()
    assert row.prompt_text


def test_old_prompts_are_cleared_and_the_numbers_kept(alice, settings):
    settings.ROUTER_LOG_RETENTION_DAYS = 30
    now = timezone.now()
    old = GatewayRequestFactory(
        user=alice,
        created_at=now - timedelta(days=31),
        total_cost_usd=Decimal("0.25"),
        input_tokens=100,
        output_tokens=50,
        latency_ms=777,
    )
    recent = GatewayRequestFactory(user=alice, created_at=now - timedelta(days=29))
    before = usage_summary(user_id=alice.pk, days=60)

    result = retention_apply()

    assert result.requests_cleared == 1
    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.prompt_text, old.response_text, old.messages) == ("", "", [])
    assert (old.total_cost_usd, old.input_tokens, old.output_tokens, old.latency_ms) == (
        Decimal("0.25"),
        100,
        50,
        777,
    )
    assert recent.prompt_text and recent.messages
    after = usage_summary(user_id=alice.pk, days=60)
    assert after.totals == before.totals


def test_it_works_in_batches_and_resumes_from_where_it_stopped(alice, settings):
    settings.ROUTER_LOG_RETENTION_DAYS = 10
    now = timezone.now()
    for day in range(11, 18):
        GatewayRequestFactory(user=alice, created_at=now - timedelta(days=day))
    assert retention_apply(batch_size=2).requests_cleared == 7
    assert not GatewayRequest.objects.exclude(prompt_text="").filter(created_at__lt=now - timedelta(days=10))
    assert retention_apply().requests_cleared == 0


def test_old_comparison_messages_are_cleared_too(alice, settings):
    settings.ROUTER_LOG_RETENTION_DAYS = 7
    comparison = Comparison.objects.create(
        id="cmp_old",
        user=alice,
        messages=[{"role": "user", "content": "secret"}],
        created_at=timezone.now() - timedelta(days=8),
    )
    assert retention_apply().comparisons_cleared == 1
    comparison.refresh_from_db()
    assert comparison.messages == []


def test_the_celery_task_applies_retention(alice, settings):
    settings.ROUTER_LOG_RETENTION_DAYS = 1
    GatewayRequestFactory(user=alice, created_at=timezone.now() - timedelta(days=2))
    assert retention_apply_task.apply().get() == {"requests_cleared": 1}


def test_old_tool_calls_are_cleared_with_the_text(alice, settings):
    """A tool call's arguments are content like a response's text: retention clears them too."""
    settings.ROUTER_LOG_RETENTION_DAYS = 30
    calls = [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"ssn": "1"}'}}]
    old = GatewayRequestFactory(
        user=alice, created_at=timezone.now() - timedelta(days=31), prompt_text="", response_text="",
        messages=[], tool_calls=calls,
    )  # fmt: skip
    assert retention_apply().requests_cleared == 1
    old.refresh_from_db()
    assert old.tool_calls is None
    assert retention_apply().requests_cleared == 0  # cleared once
