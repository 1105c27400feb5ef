"""Optional imports the web process does not make while Django loads the apps.

Some libraries import a package at start-up only to see whether it is installed, for a feature we never use.
While the apps load, those packages are marked missing (a `None` entry in `sys.modules`, the import system's own
way to say so); the marks are removed afterwards, so anything that needs one later imports it as usual. With
tracing on, nothing is skipped: the OTLP exporter and the SDK are then what the process needs.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

SKIPPED = {
    # rest_framework.compat imports it for rest_framework.test.RequestsClient alone. It is installed because
    # the OTLP span exporter sends with it. 109 modules, 4.2 MiB of a web process.
    "requests": "rest_framework.compat",
    # rest_framework.compat again, for DRF's own OpenAPI renderer (our schema is drf-spectacular's, whose views
    # import it for themselves on the first schema request: config/urls.py). 20 modules, 0.9 MiB.
    "yaml": "rest_framework.compat",
    # redis-py's observability module imports the OTel metrics SDK to learn whether it could export the client's
    # own metrics, which we never turn on (redis.observability.otel.init). 1.2 MiB.
    "opentelemetry.sdk": "redis.observability.providers",
}


@contextlib.contextmanager
def optional_imports_skipped(*, enabled: bool) -> Iterator[None]:
    placed = [name for name in SKIPPED if enabled and name not in sys.modules]
    for name in placed:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in placed:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
