"""Live processes for end-to-end tests: the ASGI gateway (one or more) in front of the fake upstream."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from providers.fake_upstream import FakeUpstreamProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


class LiveGateway:
    """`uvicorn config.asgi:application` against the test database, every provider pointed at the fake."""

    def __init__(
        self,
        *,
        database_url: str,
        upstream: FakeUpstreamProcess,
        workers: int = 1,
        env: dict[str, str] | None = None,
        output: Path | None = None,
        launcher: Sequence[str] = (),
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        base = upstream.base_urls
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url,
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
            # PostgreSQL's 100 connections are shared by every gateway a test run starts: keep pools small.
            "DB_POOL_MAX": "4",
            "DB_ASYNC_POOL_MAX": "8",
            "OPENAI_BASE_URL": base["openai"],
            "ANTHROPIC_BASE_URL": base["anthropic"],
            "GEMINI_BASE_URL": base["google"],
            "DEEPSEEK_BASE_URL": base["deepseek"],
            **(env or {}),
        }
        self.output = output  # a file to collect the process's stdout and stderr; None: inherit them
        self.launcher = list(launcher)  # a script that execs the command, e.g. bin/docker-entrypoint
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> LiveGateway:
        command = [
            *self.launcher,
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            "--workers",
            str(self.workers),
        ]
        sink = self.output.open("ab") if self.output is not None else None
        try:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=sink, stderr=subprocess.STDOUT if sink else None
            )
        finally:
            if sink is not None:
                sink.close()  # the child has its own descriptor
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the gateway exited at start-up")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the gateway did not start in 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def __enter__(self) -> LiveGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def live_database_url() -> str:
    from django.db import connection

    settings = connection.settings_dict
    return f"postgres://{settings['USER'] or 'postgres'}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"
