"""One JSON access line per request that reaches a door, with the fields of api.md's Operations, written when
it ends (a stream's after its last chunk), and never a prompt, an answer or a key."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from routing.tests.live import LiveGateway, live_database_url

pytestmark = pytest.mark.e2e
FIELDS = {
    "request_id", "door", "method", "path", "status", "key_prefix", "user_id", "team_id", "model", "provider",
    "cached", "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms", "overhead_ms", "attempts",
}  # fmt: skip
SECRET_PROMPT = "The secret word is marmalade"


@pytest.fixture(scope="module")
def logged_gateway(django_db_setup, django_db_blocker, fake_upstream):
    log = Path(tempfile.mkdtemp(prefix="access-")) / "gateway.log"
    with django_db_blocker.unblock():
        url = live_database_url()
    with LiveGateway(
        database_url=url, upstream=fake_upstream, env={"ROUTER_ACCESS_LOG": "true"}, output=log
    ) as gw:
        yield gw, log


def _lines(log: Path, request_id: str, timeout_s: float = 10) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = []
        for raw in log.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                line = json.loads(raw)
                if line.get("logger") == "router.access" and line.get("request_id") == request_id:
                    found.append(line)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_every_door_writes_one_access_line_when_the_request_ends(e2e, logged_gateway, alice, alice_key):
    gateway, log = logged_gateway
    auth = {"Authorization": f"Bearer {alice_key}", "Cache-Control": "no-store"}  # every call paid for
    hello = [{"role": "user", "content": SECRET_PROMPT}]
    calls = [
        ("chat", "/v1/chat/completions", auth, {"model": "gpt-4o-mini", "messages": hello}),
        ("chat", "/v1/chat/completions", auth, {"model": "gpt-4o-mini", "messages": hello, "stream": True, "cache": False}),
        ("messages", "/v1/messages", {**auth, "anthropic-version": "2023-06-01"},
         {"model": "claude-haiku-3.5", "max_tokens": 50, "messages": hello}),
        ("responses", "/v1/responses", auth, {"model": "gpt-4o-mini", "input": SECRET_PROMPT}),
    ]  # fmt: skip
    for door, path, headers, body in calls:
        response = httpx.post(gateway.url + path, headers=headers, json=body, timeout=30)
        assert response.status_code == 200, response.text
        _ = response.content  # the whole stream
        (line,) = _lines(log, response.headers["X-Request-Id"])
        assert set(line) >= FIELDS and line["level"] == "INFO"
        assert (line["door"], line["path"], line["method"], line["status"]) == (door, path, "POST", 200)
        assert (
            line["user_id"] == alice.pk
            and line["team_id"] is None
            and alice_key.startswith(line["key_prefix"])
        )
        assert line["model"] and line["provider"] and line["attempts"] >= 1 and line["latency_ms"] >= 0
        assert line["cached"] is False, line
        assert line["prompt_tokens"] > 0 and line["completion_tokens"] > 0 and float(line["cost_usd"]) > 0, (
            line
        )
    text = log.read_text(errors="replace")
    assert "marmalade" not in text and alice_key not in text  # no prompt, no key, in any line


def test_a_refused_request_writes_its_line_too(e2e, logged_gateway, alice_key):
    gateway, log = logged_gateway
    bad = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": "Bearer amr_nope"},
        json={},
        timeout=30,
    )
    invalid = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {alice_key}"},
        json={"model": 1},
        timeout=30,
    )
    for response, status in ((bad, 401), (invalid, 400)):
        assert response.status_code == status
        (line,) = _lines(log, response.headers["X-Request-Id"])
        assert line["status"] == status and line["door"] == "chat" and line["model"] is None
