"""Every configured provider key is redacted from what a provider says, not only the answering vendor's own."""

from __future__ import annotations

import pytest
import respx
from django.test import AsyncClient

from config.db import close_pools
from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import ChatRequest, ProviderConfig, ProviderError
from providers.adapters.redaction import secrets_register
from providers.catalog import catalog_invalidate
from routing.models import Attempt, GatewayRequest

OPENAI_KEY = "sk-openai-0123456789abcdefSECRET"
ANTHROPIC_KEY = "sk-ant-api03-abcdefghijklmnopSECRET"
UPSTREAM = "http://anthropic.test"


def _echoing_error() -> dict:
    # A misconfigured proxy in front of Anthropic echoes the headers it saw, another vendor's key among them.
    return {"type": "error", "error": {"type": "invalid_request_error",
            "message": f"bad header x-openai-key={OPENAI_KEY}; x-api-key: {ANTHROPIC_KEY}"}}  # fmt: skip


async def test_an_error_body_echoing_another_vendors_key_is_redacted_in_the_error():
    secrets_register([OPENAI_KEY, ANTHROPIC_KEY])
    config = ProviderConfig("anthropic", UPSTREAM, ANTHROPIC_KEY)
    request = ChatRequest(model="claude-3-5-haiku-20241022", messages=[{"role": "user", "content": "hi"}])
    try:
        with respx.mock:
            respx.post(f"{UPSTREAM}/v1/messages").respond(400, json=_echoing_error())
            with pytest.raises(ProviderError) as raised:
                await AnthropicAdapter().complete(config, request)
    finally:
        secrets_register([])
    assert OPENAI_KEY not in str(raised.value) and ANTHROPIC_KEY not in str(raised.value)
    assert "[redacted]" in str(raised.value)


@pytest.mark.django_db(transaction=True)
async def test_no_configured_key_reaches_the_client_or_the_log(settings, catalog, alice_key):
    settings.PROVIDER_API_KEYS = {
        **settings.PROVIDER_API_KEYS,
        "openai": OPENAI_KEY,
        "anthropic": ANTHROPIC_KEY,
    }
    settings.PROVIDER_BASE_URLS = {**settings.PROVIDER_BASE_URLS, "anthropic": UPSTREAM}
    catalog_invalidate()
    body = {"model": "claude-3-5-haiku-20241022", "messages": [{"role": "user", "content": "hi"}]}
    try:
        with respx.mock(assert_all_called=False) as mock:
            mock.post(f"{UPSTREAM}/v1/messages").respond(400, json=_echoing_error())
            response = await AsyncClient().post(
                "/v1/chat/completions", body, content_type="application/json",
                headers={"Authorization": f"Bearer {alice_key}"},
            )  # fmt: skip
    finally:
        await close_pools()
        catalog_invalidate()
        secrets_register([])
    assert response.status_code == 400, response.content
    assert OPENAI_KEY.encode() not in response.content and ANTHROPIC_KEY.encode() not in response.content
    row = await GatewayRequest.objects.aget(pk=response["X-Request-Id"])
    stored = row.error_message + "".join([a.error async for a in Attempt.objects.filter(request_id=row.pk)])
    assert OPENAI_KEY not in stored and ANTHROPIC_KEY not in stored and "[redacted]" in stored
