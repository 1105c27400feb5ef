"""A real Celery worker (prefork, a subprocess) for the compare and batch tests, plus HTTP clients for them;
and the in-process gateway's providers pointed at the fake upstream (`upstream`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings

from providers.catalog import catalog_invalidate
from providers.fake_upstream import FakeUpstreamProcess

ROOT = Path(__file__).resolve().parents[2]


class LiveWorker:
    """`celery -A config worker` against the test database and Redis, every provider pointed at the fake.

    It runs in a session of its own, so `kill()` can SIGKILL the main process and its pool children at once,
    the way a machine or container dies.
    """

    def __init__(
        self,
        *,
        database_url: str,
        upstream: FakeUpstreamProcess,
        concurrency: int = 4,
        env: dict[str, str] | None = None,
    ) -> None:
        base = upstream.base_urls
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.concurrency = concurrency
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url,
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
            "OPENAI_BASE_URL": base["openai"],
            "ANTHROPIC_BASE_URL": base["anthropic"],
            "GEMINI_BASE_URL": base["google"],
            "DEEPSEEK_BASE_URL": base["deepseek"],
            "ROUTER_UPSTREAM_TIMEOUT_S": "2",
            "ROUTER_RETRY_AFTER_MAX_S": "5",
            # A pool process runs one task at a time: small pools, as PostgreSQL's 100 connections are shared.
            "DB_POOL_MIN": "0",
            "DB_POOL_MAX": "3",
            "DB_ASYNC_POOL_MAX": "2",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)  # noqa: SIM115

    def start(self, timeout_s: float = 30.0) -> LiveWorker:
        command = [
            str(Path(sys.executable).with_name("celery")),
            "-A",
            "config",
            "worker",
            "--pool=prefork",
            f"--concurrency={self.concurrency}",
            "-Q",
            settings.CELERY_TASK_DEFAULT_QUEUE,  # this test run's own queue (config.settings.test)
            "-n",
            self.name,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        from config.celery import app

        hostname = self.name.replace("%h", os.uname().nodename)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited at start-up:\n{self.log()}")
            if app.control.ping(destination=[hostname], timeout=0.5):
                return
        raise RuntimeError(f"the Celery worker did not answer a ping in {timeout_s}s:\n{self.log()}")

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL to the worker and its pool: nothing is acknowledged, nothing is cleaned up."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # warm shutdown: running tasks finish
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def __enter__(self) -> LiveWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        Path(self._log.name).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def worker_factory(django_db_setup, django_db_blocker, fake_upstream) -> Iterator[Callable[..., LiveWorker]]:
    """Starts workers on demand (`worker_factory(concurrency=…, env=…)`); stops any left at the end."""
    from routing.tests.live import live_database_url

    with django_db_blocker.unblock():
        url = live_database_url()
    started: list[LiveWorker] = []

    def start(*, concurrency: int = 4, env: dict[str, str] | None = None) -> LiveWorker:
        worker = LiveWorker(database_url=url, upstream=fake_upstream, concurrency=concurrency, env=env)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.__exit__()
    _queue_delete()


def _queue_delete() -> None:
    """Drops this run's queue and its bindings from the broker (the per-test flush does not reach that database):
    the keys kombu's Redis transport keeps for a queue, whose exchange has the same name."""
    import redis

    name = settings.CELERY_TASK_DEFAULT_QUEUE
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")
    client.close()


@pytest.fixture(scope="module")
def live_worker(worker_factory) -> LiveWorker:
    """One worker per test module (modules never share one, so a test that kills workers stays alone)."""
    worker = worker_factory()
    yield worker
    worker.stop()


@pytest.fixture
def fanout(e2e, live_worker):
    """The live gateway with this module's worker behind it; yields the gateway."""
    yield e2e


def api_client(gateway_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=gateway_url + "/v1", headers={"Authorization": f"Bearer {key}"}, timeout=60)


@pytest.fixture
def alice_http(e2e, alice_key) -> Iterator[httpx.Client]:
    with api_client(e2e.url, alice_key) as client:
        yield client


@pytest.fixture
def bob_http(e2e, bob_key) -> Iterator[httpx.Client]:
    with api_client(e2e.url, bob_key) as client:
        yield client


@pytest.fixture
def upstream(settings, catalog, fake_upstream) -> Iterator[Any]:
    """Every provider of an in-process request (Django's AsyncClient) at the fake upstream, its recordings
    cleared before and after."""
    settings.PROVIDER_BASE_URLS = fake_upstream.base_urls
    catalog_invalidate()
    fake_upstream.clear()
    yield fake_upstream
    fake_upstream.clear()
    catalog_invalidate()
