"""A fake upstream speaking the OpenAI, Anthropic, Gemini and DeepSeek wire formats, and a helper to run it.

Start it with `python -m providers.fake_upstream --port 9100`, or from tests and benchmarks with
`with FakeUpstreamProcess() as upstream: ...`. See `app.py` for the routes and `rules.py` for fault injection.
"""

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class FakeUpstreamProcess:
    """Runs the fake upstream in a subprocess on a free port; use as a context manager.

    `url` is the server root; `base_urls` gives each vendor's base URL in its SDK's convention.
    """

    def __init__(
        self, port: int | None = None, host: str = "127.0.0.1", startup_timeout_s: float = 15.0
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_urls(self) -> dict[str, str]:
        return {"openai": f"{self.url}/v1", "anthropic": self.url, "google": self.url, "deepseek": self.url}

    def start(self) -> Self:
        command = [
            sys.executable,
            "-m",
            "providers.fake_upstream",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        log = tempfile.TemporaryFile()  # noqa: SIM115 (read only if start-up fails)
        self._process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log.seek(0)
                raise RuntimeError(
                    f"fake upstream exited at start-up:\n{log.read().decode(errors='replace')}"
                )
            try:
                if self._call("GET", "/health", timeout_s=0.5) == {"ok": True}:
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"fake upstream did not answer /health on {self.url} in {self.startup_timeout_s}s")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def control(self, **rule: Any) -> dict[str, Any]:
        """Add a fault rule, e.g. `control(model="gpt-4o-mini", status=429, times=2, retry_after=1)`."""
        result: dict[str, Any] = self._call("POST", "/__control", rule)
        return result

    def clear(self) -> None:
        """Drop every rule and every recorded request."""
        self._call("DELETE", "/__control")

    def requests(self, model: str | None = None) -> list[dict[str, Any]]:
        """The recorded vendor requests, oldest first (auth header values masked)."""
        query = f"?model={urllib.parse.quote(model)}" if model else ""
        result: list[dict[str, Any]] = self._call("GET", f"/__requests{query}")
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/__stats")
        return result

    def _call(self, method: str, path: str, payload: Any = None, timeout_s: float = 10.0) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 (always our own http:// URL)
            self.url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as refused:
            raise ValueError(f"fake upstream refused {method} {path}: {refused.read().decode()}") from refused
