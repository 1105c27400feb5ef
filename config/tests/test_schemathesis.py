"""Schemathesis against /openapi.json on a live gateway: no 500s, every error in the envelope, every response as
documented (the schema's error responses reference the envelope, so conformance checks the envelope too)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from routing.tests.live import LiveGateway, live_database_url

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
    "unsupported_method",
]
# POST compare and batch hand work to Celery workers, which this test does not run; their GET views are in.
EXCLUDED = r"^/v1/chat/(compare|batch)$"


@pytest.fixture(scope="module")
def gateway(django_db_setup, django_db_blocker, fake_upstream) -> Iterator[LiveGateway]:
    with django_db_blocker.unblock():
        url = live_database_url()
    env = {
        "ROUTER_UPSTREAM_TIMEOUT_S": "5",
        "ROUTER_AUTH_FAILURES_PER_MINUTE": "0",  # the fuzzer sends bad keys on purpose (ignored_auth)
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "4",
        "DB_ASYNC_POOL_MAX": "4",
    }
    with LiveGateway(database_url=url, upstream=fake_upstream, env=env) as live:
        yield live


def test_the_schema_documents_every_v1_operation_with_the_error_envelope(gateway):
    schema = httpx.get(gateway.url + "/openapi.json", timeout=30).json()
    paths = schema["paths"]
    assert "/v1/chat/completions" in paths
    completion = paths["/v1/chat/completions"]["post"]
    body = schema["components"]["schemas"]["CompletionInput"]
    assert body["required"] == ["messages"]
    assert {"model", "mode", "fallbacks", "max_cost", "budget_policy", "stream"} <= set(body["properties"])
    assert set(completion["responses"]) >= {"200", "400", "401", "402", "413", "429", "502", "503", "504"}
    assert "text/event-stream" in completion["responses"]["200"]["content"]
    assert {
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/responses",
        "/v1/responses/{response_id}",
    } <= set(paths)
    for path, operations in paths.items():
        if path.startswith("/v1/"):
            # Each door errs in its own dialect's envelope: Anthropic's for /v1/messages, OpenAI's elsewhere.
            envelope = "AnthropicError" if path.startswith("/v1/messages") else "Error"
            for method, operation in operations.items():
                assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
                    "$ref": f"#/components/schemas/{envelope}"
                }, (method, path)
                assert operation.get("security"), (method, path)


CONFIG = """
[checks]
enabled = false
{checks}

[[operations]]
include-name = ["GET /v1/analytics/requests", "GET /v1/analytics/usage"]
# DRF reads an empty query value (?page=, ?days=) as "not given", i.e. the default, not as a bad number.
# Every other bad value of these parameters is a 400: analytics/tests/test_request_list_api.py, test_usage_api.py.
checks.negative_data_rejection.enabled = false

[parameters]
# A request of the caller's own, so the detail endpoint's 200 is checked against the schema, not only its 404.
"path.request_id" = "{request_id}"
"""


def test_schemathesis_finds_no_server_error_and_every_response_matches_the_schema(
    e2e, gateway, alice_key, tmp_path
):
    logged = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {alice_key}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]},
        timeout=30,
    )
    assert logged.status_code == 200
    config = tmp_path / "schemathesis.toml"
    checks = "\n".join(f"{name}.enabled = true" for name in CHECKS)
    config.write_text(CONFIG.format(request_id=logged.json()["id"], checks=checks))
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(config),
        "run",
        gateway.url + "/openapi.json",
        "--url",
        gateway.url,
        "--header",
        f"Authorization: Bearer {alice_key}",
        "--include-path-regex",
        "^/v1/",
        "--exclude-path-regex",
        EXCLUDED,
        "--max-examples",
        os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "30"),
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        os.environ.get("SCHEMATHESIS_SEED", "20251016"),
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20_000:]
    tested = re.search(r"Selected: (\d+)/\d+\s+Tested: (\d+)", output)
    assert tested is not None and tested.group(1) == tested.group(2), output[-3000:]
    assert int(tested.group(2)) >= 12  # every /v1 operation but the two Celery ones
