"""OpenTelemetry tracing, off unless configured: OTEL_TRACES_ENABLED=true (OTLP over HTTP to
OTEL_EXPORTER_OTLP_ENDPOINT, or to the console when no endpoint is set). Off, spans are no-ops."""

from __future__ import annotations

import os

from opentelemetry import trace

_configured = False


def tracing_enabled() -> bool:
    return os.environ.get("OTEL_TRACES_ENABLED", "").lower() in ("1", "true", "yes", "on")


def tracing_setup() -> None:
    global _configured
    if _configured or not tracing_enabled():
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        exporter = ConsoleSpanExporter()
    service = os.environ.get("OTEL_SERVICE_NAME", "ai-model-router")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _configured = True


tracer = trace.get_tracer("ai-model-router")
