"""With tracing on, a completion makes a request span and one child span per provider attempt."""

import pytest
from django.test import AsyncClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from config.db import close_pools


@pytest.fixture
def spans(monkeypatch):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    monkeypatch.setattr("routing.pipeline.call.tracer", tracer)
    monkeypatch.setattr("routing.api.doors.tracer", tracer)
    return exporter


@pytest.mark.django_db(transaction=True)
async def test_a_completion_has_a_request_span_with_a_child_per_attempt(
    spans, catalog, fake_upstream, alice_key, settings
):
    settings.PROVIDER_BASE_URLS = fake_upstream.base_urls
    fake_upstream.clear()
    fake_upstream.control(model="gpt-4o-mini", status=500, times=1)
    try:
        response = await AsyncClient().post(
            "/v1/chat/completions",
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "trace me"}]},
            content_type="application/json",
            headers={"Authorization": f"Bearer {alice_key}"},
        )
    finally:
        await close_pools()  # the in-process pool must not hold the test database open
    assert response.status_code == 200, response.content
    finished = spans.get_finished_spans()
    request_span = next(s for s in finished if s.name == "chat.completion")
    attempts = [s for s in finished if s.name == "provider.attempt"]
    assert [a.attributes["router.model"] for a in attempts] == ["gpt-4o-mini", "gpt-4o-mini"]
    assert attempts[0].status.status_code.name == "ERROR"
    assert all(a.parent.span_id == request_span.context.span_id for a in attempts)
    assert request_span.attributes["router.request_id"] == response["X-Request-Id"]
    fake_upstream.clear()
