"""Prometheus metrics of the gateway: requests, latency, tokens, cost, cache, retries, fallbacks, refusals."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry

if TYPE_CHECKING:
    from collections.abc import Iterator

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

REQUESTS = Counter(
    "router_requests", "Requests served, by door", ["door", "model", "provider", "status", "cached"]
)
LATENCY = Histogram(
    "router_request_latency_seconds",
    "Whole-request latency",
    ["door", "model", "provider"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_LATENCY = Histogram(
    "router_upstream_latency_seconds",
    "Latency of one provider call",
    ["model", "provider"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_ERRORS = Counter("router_upstream_errors", "Failed provider calls", ["model", "provider", "status"])
TOKENS = Counter("router_tokens", "Tokens billed", ["model", "provider", "kind"])
COST = Counter("router_cost_usd", "Money spent (USD)", ["model", "provider"])
CACHE_HITS = Counter("router_cache_hits", "Answers served from the response cache", ["model"])
RETRIES = Counter("router_retries", "Provider calls retried on the same model", ["model", "provider"])
FALLBACKS = Counter("router_fallbacks", "Requests answered by a model other than the first choice", ["model"])
BUDGET_REFUSALS = Counter("router_budget_refusals", "Requests refused with 402")
RATE_LIMIT_REFUSALS = Counter("router_rate_limit_refusals", "Requests refused with 429")
USAGE_ANOMALIES = Counter(
    "router_usage_anomalies",
    "Provider usage counts out of bounds, charged at the bound",
    ["provider", "field"],
)
UNSETTLED = Counter("router_unsettled_requests", "Pending rows closed at their hold after their process died")


@functools.lru_cache(maxsize=4096)
def child(metric: Counter | Histogram, *labels: str) -> Any:
    """metric.labels(*labels), looked up once per label set: prometheus_client's labels() converts every value
    and takes its lock on each call, six times per request. (Label sets are few: doors, catalog models,
    providers, statuses.)"""
    return metric.labels(*labels)


class CeleryQueueDepth(Collector):
    """Tasks waiting in the Celery broker (Redis lists), read at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.conf import settings

        gauge = GaugeMetricFamily(
            "router_celery_queue_depth", "Tasks waiting in the broker", labels=["queue"]
        )
        broker = settings.CELERY_BROKER_URL
        if broker and broker.startswith("redis"):
            from config.redis_clients import REDIS_ERRORS, redis_sync_client

            client = redis_sync_client(broker)
            try:
                queue = settings.CELERY_TASK_DEFAULT_QUEUE
                gauge.add_metric([queue], client.llen(queue))
            except REDIS_ERRORS:
                pass
            finally:
                client.close()
        yield gauge


# Values read when /metrics is scraped: the same whichever worker answers, so reported once, never per worker. (A
# Gauge kept by each worker would need a multiprocess_mode: livesum for a per-worker amount, mostrecent for one value.)
SCRAPE_COLLECTORS: tuple[Collector, ...] = (CeleryQueueDepth(),)
_registered = False


def register_collectors() -> None:
    global _registered
    if not _registered:
        for collector in SCRAPE_COLLECTORS:
            REGISTRY.register(collector)
        _registered = True


@functools.cache
def metrics_registry(multiproc_dir: str | None) -> CollectorRegistry:
    """What /metrics renders: this process's registry, or in multiprocess mode (config.prometheus) the sum of every
    worker's files and the scrape-time collectors (not the default registry, whose metrics are this worker's own)."""
    if multiproc_dir is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=multiproc_dir)
    for collector in SCRAPE_COLLECTORS:
        registry.register(collector)
    return registry
