"""Provider API keys never leave the gateway: not in a response, a log line, /metrics, the schema, admin or the
dashboard, even when a provider echoes the key back in an error. They do reach the provider, in its header."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.admin.utils import quote
from django.test import Client
from django.urls import reverse

from routing.models import Attempt, GatewayRequest
from routing.tests.live import LiveGateway, live_database_url

pytestmark = pytest.mark.e2e
SECRETS = {
    "openai": "sk-test-SECRET-openai-1234567890",
    "anthropic": "sk-ant-test-SECRET-anthropic-456",
    "google": "AIza-test-SECRET-google-789",
    "deepseek": "sk-test-SECRET-deepseek-012",
}
ENV_NAMES = {"openai": "OPENAI", "anthropic": "ANTHROPIC", "google": "GOOGLE", "deepseek": "DEEPSEEK"}
MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-20241022",
    "google": "gemini-2.5-flash",
    "deepseek": "deepseek-chat",
}
# Where each vendor's SDK sends the key (the fake upstream records it, masked).
AUTH_HEADERS = {
    "openai": "authorization",
    "anthropic": "x-api-key",
    "google": "x-goog-api-key",
    "deepseek": "authorization",
}
HELLO = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def gateway_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("secrets") / "gateway.log"


@pytest.fixture(scope="module")
def keyed_gateway(django_db_setup, django_db_blocker, fake_upstream, gateway_log) -> Iterator[LiveGateway]:
    with django_db_blocker.unblock():
        url = live_database_url()
    env = {f"{ENV_NAMES[p]}_API_KEY": secret for p, secret in SECRETS.items()}
    env.update(
        {"ROUTER_UPSTREAM_TIMEOUT_S": "2", "DB_POOL_MIN": "1", "DB_POOL_MAX": "4", "DB_ASYNC_POOL_MAX": "4"}
    )
    with LiveGateway(database_url=url, upstream=fake_upstream, env=env, output=gateway_log) as gateway:
        yield gateway


def _assert_no_secret(text: str, where: str) -> None:
    for provider, secret in SECRETS.items():
        assert secret not in text, f"the {provider} key leaked into {where}"
        assert "SECRET" not in text, f"part of a provider key leaked into {where}"


def _everything(response: httpx.Response) -> str:
    return "\n".join([*(f"{k}: {v}" for k, v in response.headers.items()), response.text])


def _post(gateway: LiveGateway, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"messages": HELLO, **body},
        timeout=30,
    )


def test_provider_keys_reach_the_provider_in_its_own_header(e2e, keyed_gateway, alice_key, fake_upstream):
    for provider, model in MODELS.items():
        assert _post(keyed_gateway, alice_key, {"model": model}).status_code == 200
        received = fake_upstream.requests(model=model)
        assert received, provider
        assert received[-1]["headers"][AUTH_HEADERS[provider]] == "***"  # sent, and masked in the recording
        assert "key=" not in received[-1]["query"]  # never in a URL, where proxies log it


def test_provider_keys_appear_in_no_response_log_page_or_metric(
    e2e, keyed_gateway, gateway_log, alice, alice_key, admin_user, fake_upstream
):
    seen: list[tuple[str, str]] = []
    for provider, model in MODELS.items():
        secret = SECRETS[provider]
        # A provider that echoes the key back, as OpenAI's 401 does, on every kind of failure.
        for status in (401, 400, 500, 503):
            fake_upstream.clear()
            fake_upstream.control(model=model, status=status, message=f"Incorrect API key provided: {secret}")
            response = _post(keyed_gateway, alice_key, {"model": model, "cache": False})
            assert response.status_code in (400, 502), response.text
            seen.append((f"{provider} {status} response", _everything(response)))
        fake_upstream.clear()
        fake_upstream.control(model=model, status=401, message=f"bad key {secret}")
        streamed = _post(keyed_gateway, alice_key, {"model": model, "stream": True, "cache": False})
        seen.append((f"{provider} stream", _everything(streamed)))
        seen.append((f"{provider} success", _everything(_post(keyed_gateway, alice_key, {"model": model}))))
    fake_upstream.clear()
    for path in ("/metrics", "/openapi.json", "/health", "/ready", "/docs"):
        seen.append((path, _everything(httpx.get(keyed_gateway.url + path, timeout=30))))
    for path in ("/v1/models", "/v1/analytics/requests?per_page=100", "/v1/analytics/usage", "/v1/budget"):
        response = httpx.get(
            keyed_gateway.url + path, headers={"Authorization": f"Bearer {alice_key}"}, timeout=30
        )
        seen.append((path, _everything(response)))

    failed = GatewayRequest.objects.filter(status="error")
    assert failed.count() >= 16
    seen.append(("the request log", "\n".join(f"{r.error_message} {r.response_text}" for r in failed)))
    seen.append(("the attempts", "\n".join(a.error for a in Attempt.objects.all())))
    seen += _pages(Client(), admin_user, alice, failed.first())
    seen.append(("the gateway's output", gateway_log.read_text(errors="replace")))

    for where, text in seen:
        _assert_no_secret(text, where)
    assert "[redacted]" in "\n".join(text for _, text in seen)  # the echoes were there, and scrubbed


def _pages(client: Client, admin: Any, owner: Any, row: GatewayRequest | None) -> list[tuple[str, str]]:
    assert row is not None
    client.force_login(admin)
    paths = [
        "/admin/",
        "/admin/providers/provider/",
        "/admin/routing/gatewayrequest/",
        # admin quotes a primary key ("_" is its escape: "req_24..." is not "req$..."), so reverse() it
        reverse("admin:routing_gatewayrequest_change", args=[quote(row.pk)]),
        "/dashboard/",
        "/dashboard/requests/",
        f"/dashboard/requests/{row.pk}/",
        "/dashboard/models/",
    ]
    from providers.models import Provider

    paths += [f"/admin/providers/provider/{p.pk}/change/" for p in Provider.objects.all()]
    pages = []
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        pages.append((path, response.content.decode()))
    client.force_login(owner)
    pages.append(("the owner's request page", client.get(f"/dashboard/requests/{row.pk}/").content.decode()))
    return pages
