"""Operational endpoints: liveness, readiness (database and Redis), Prometheus metrics."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    from config.db import database_probe

    return database_probe()


def _redis_ok() -> bool:
    from config.redis_clients import redis_probe

    return redis_probe()


def ready(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_ok(), "redis": _redis_ok()}
    ok = all(checks.values())
    return JsonResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )


def metrics(request: HttpRequest) -> HttpResponse:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from config.prometheus import multiprocess_dir
    from routing.metrics import metrics_registry

    registry = metrics_registry(multiprocess_dir())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
