"""With several web workers (WEB_CONCURRENCY > 1), /metrics from any of them reports the sum over all of them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from prometheus_client import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import REGISTRY

from routing.metrics import metrics_registry
from routing.tests.live import ROOT, LiveGateway, live_database_url

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


# --- Two uvicorn workers started as the container starts them.


def _chat(url: str, key: str, n: int) -> int:
    response = httpx.post(  # a connection of its own, which either worker may accept
        url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"count me {n}"}]},
        timeout=30,
    )
    return response.status_code


def _served_by_each_worker(directory: Path) -> dict[str, float]:
    """Requests counted in each worker's own file (named after its pid)."""
    return {
        path.stem.removeprefix("counter_"): sum(
            s.value
            for family in MultiProcessCollector.merge([str(path)])
            for s in family.samples
            if s.name == "router_requests_total"
        )
        for path in directory.glob("counter_*.db")
    }


def _poll(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.e2e
def test_with_two_workers_any_worker_reports_the_requests_of_both(
    transactional_db, catalog, alice_key, fake_upstream, tmp_path
):
    fake_upstream.clear()
    env = {
        "WEB_CONCURRENCY": "2",
        "TMPDIR": str(tmp_path),  # where bin/docker-entrypoint creates the server's metrics directory
        "ROUTER_STATE_DIR": str(tmp_path / "state"),
        "ROUTER_DEMO": "false",  # the providers stay pointed at this run's fake upstream
        "SECRET_KEY": "test-only",
    }
    gateway = LiveGateway(
        database_url=live_database_url(),
        upstream=fake_upstream,
        workers=2,
        env=env,
        launcher=[str(ROOT / "bin" / "docker-entrypoint")],
    )
    with gateway, ThreadPoolExecutor(max_workers=8) as pool:
        made = list(tmp_path.glob("router-prometheus.*"))
        assert len(made) == 1, "bin/docker-entrypoint made no directory for the workers' metrics"
        directory = made[0]
        _poll(lambda: len(_served_by_each_worker(directory)) == 2)  # both have loaded the app
        sent = 0
        served: dict[str, float] = {}
        while sent < 160 and not (len(served) == 2 and all(served.values())):
            statuses = list(pool.map(lambda n: _chat(gateway.url, alice_key, n), range(sent, sent + 8)))
            assert statuses == [200] * 8
            sent += 8
            served = _served_by_each_worker(directory)
        assert len(served) == 2 and all(served.values()), f"one worker served them all: {served}"
        _poll(lambda: sum(_served_by_each_worker(directory).values()) == sent)

        for _ in range(6):  # fresh connections, whichever worker accepts them
            families = _families(httpx.get(gateway.url + "/metrics", timeout=10).text)
            assert _total(families, "router_requests", "router_requests_total") == sent
            assert _total(families, LATENCY, LATENCY + "_count") == sent
            assert len(families[QUEUE_DEPTH]) == 1
