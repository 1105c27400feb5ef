"""A web process does not import the packages that libraries probe for at start-up and we never use
(config.lean_imports), unless tracing is on; and a later import of one of them still works."""

from __future__ import annotations

import sys

import pytest

from config.lean_imports import optional_imports_skipped
from config.tests.fresh_process import run_json

# Starts the ASGI module as uvicorn does, loads the URLconf as the lifespan start-up does, and reports.
START = """
import json, sys
import config.asgi
config.asgi.settle_heap()
from opentelemetry import trace
import rest_framework.compat
from config.lean_imports import SKIPPED
seen = {name: name in sys.modules for name in SKIPPED}
schema_views = "drf_spectacular.views" in sys.modules
probes = {"drf_requests": rest_framework.compat.requests is not None}
provider = type(trace.get_tracer_provider()).__module__
import requests  # a later import is an ordinary one
answer = {"seen": seen, "probes": probes, "provider": provider, "requests": requests.__name__}
print(json.dumps({**answer, "schema_views": schema_views}))
"""


def start(**env: str) -> dict[str, object]:
    return run_json(START, dict(env))


def test_without_tracing_the_probed_packages_are_not_imported_and_can_be_later() -> None:
    started = start(OTEL_TRACES_ENABLED="false")
    assert started["seen"] == {"requests": False, "yaml": False, "opentelemetry.sdk": False}
    assert started["probes"] == {"drf_requests": False}
    assert started["schema_views"] is False  # imported by the first schema request (config.lazy_views)
    assert started["requests"] == "requests"


def test_with_tracing_on_nothing_is_skipped_and_spans_export_over_otlp() -> None:
    started = start(OTEL_TRACES_ENABLED="true", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318")
    assert started["seen"] == {"requests": True, "yaml": True, "opentelemetry.sdk": True}
    assert started["probes"] == {"drf_requests": True}
    assert str(started["provider"]).startswith("opentelemetry.sdk.trace")


def test_the_marks_are_removed_afterwards_and_a_loaded_module_is_left_alone(monkeypatch) -> None:
    loaded = sys.modules.get("requests")
    monkeypatch.delitem(sys.modules, "opentelemetry.sdk", raising=False)
    with optional_imports_skipped(enabled=True):
        assert sys.modules.get("opentelemetry.sdk", "absent") is None
        with pytest.raises(ModuleNotFoundError):
            import opentelemetry.sdk  # noqa: F401
        assert sys.modules.get("requests") is loaded  # already imported (or absent): not marked over
    assert "opentelemetry.sdk" not in sys.modules or sys.modules["opentelemetry.sdk"] is not None


def test_disabled_marks_nothing(monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "opentelemetry.sdk", raising=False)
    with optional_imports_skipped(enabled=False):
        assert sys.modules.get("opentelemetry.sdk", "absent") is not None
