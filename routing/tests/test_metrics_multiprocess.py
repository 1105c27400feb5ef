"""With several web workers (WEB_CONCURRENCY > 1), /metrics from any of them reports the sum over all of them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from django.conf import settings
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import REGISTRY

from routing.metrics import metrics_registry
from routing.tests.live import ROOT

QUEUE_DEPTH = "router_celery_queue_depth"
LATENCY = "router_request_latency_seconds"


def _in_a_worker(directory: Path, code: str) -> None:
    """Runs code in a process of its own (one worker), its metrics in the directory."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env, check=True)


def _families(text: str) -> dict[str, list]:
    families: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        families.setdefault(family.name, []).append(family)
    return families


def _total(families: dict[str, list], family: str, sample: str) -> float:
    return sum(s.value for f in families.get(family, []) for s in f.samples if s.name == sample)


def test_one_worker_reports_its_own_registry_unchanged():
    assert metrics_registry(None) is REGISTRY


def test_the_workers_files_are_summed_and_the_queue_depth_is_reported_once(tmp_path):
    for requests in (2, 3):
        _in_a_worker(
            tmp_path,
            f"""
            from routing.metrics import LATENCY, REQUESTS
            for _ in range({requests}):
                REQUESTS.labels("chat", "gpt-4o-mini", "openai", "success", "false").inc()
                LATENCY.labels("chat", "gpt-4o-mini", "openai").observe(0.02)
            """,
        )
    assert len(list(tmp_path.glob("counter_*.db"))) == 2

    text = generate_latest(metrics_registry(str(tmp_path))).decode()
    families = _families(text)
    assert _total(families, "router_requests", "router_requests_total") == 5
    assert _total(families, LATENCY, LATENCY + "_count") == 5
    buckets = {
        s.labels["le"]: s.value for f in families[LATENCY] for s in f.samples if s.name.endswith("_bucket")
    }
    assert buckets["0.01"] == 0 and buckets["0.025"] == 5 and buckets["+Inf"] == 5
    # Read at scrape time, so once: not once per worker, and without a pid label.
    assert text.count(f"# TYPE {QUEUE_DEPTH} gauge") == 1
    (depth,) = families[QUEUE_DEPTH]
    assert [s.labels for s in depth.samples] == [{"queue": settings.CELERY_TASK_DEFAULT_QUEUE}]


def test_a_worker_that_stops_takes_its_live_gauges_files_and_leaves_its_counts(tmp_path, monkeypatch):
    from config import asgi

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    pid = os.getpid()
    for name in (f"gauge_livesum_{pid}.db", f"gauge_livesum_{pid + 1}.db", f"counter_{pid}.db"):
        (tmp_path / name).touch()
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return next(messages)

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])

    asyncio.run(asgi.application({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"counter_{pid}.db", f"gauge_livesum_{pid + 1}.db"]


def test_several_workers_without_the_directory_are_reported_at_start(monkeypatch, caplog):
    from config.prometheus import multiprocess_setup

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    multiprocess_setup()
    assert "PROMETHEUS_MULTIPROC_DIR" in caplog.text
