"""Through the gateway: a key one provider echoes, of any configured provider, reaches neither client nor log."""

from __future__ import annotations

import pytest
import respx
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient

from config.db import close_pools
from providers.adapters.redaction import redact, secrets_register
from providers.catalog import catalog_get, catalog_invalidate
from routing.models import Attempt, GatewayRequest

OPENAI_KEY = "sk-proj-openai0123456789abcdefSECRET"
ANTHROPIC_KEY = "sk-ant-api03-anthropic0123456789SECRET"
UPSTREAM = "http://anthropic.test"


@pytest.fixture
def keys_configured(settings):
    settings.PROVIDER_API_KEYS = {
        **settings.PROVIDER_API_KEYS,
        "openai": OPENAI_KEY,
        "anthropic": ANTHROPIC_KEY,
    }
    settings.PROVIDER_BASE_URLS = {**settings.PROVIDER_BASE_URLS, "anthropic": UPSTREAM}
    catalog_invalidate()
    yield
    catalog_invalidate()
    secrets_register([])


def test_loading_the_catalog_registers_every_configured_key(catalog, keys_configured):
    secrets_register([])
    catalog_get(fresh=True)
    assert redact(f"a {OPENAI_KEY} b {ANTHROPIC_KEY} c") == "a [redacted] b [redacted] c"


@pytest.mark.django_db(transaction=True)
async def test_a_key_echoed_in_a_body_that_is_not_json_reaches_neither_client_nor_log(
    catalog, keys_configured, alice_key
):
    # A proxy in front of Anthropic answers 200 with a text page quoting the OpenAI key in the middle of a word.
    page = f"<html>proxy: upstream credentials x{OPENAI_KEY}y rejected</html>"
    body = {"model": "claude-3-5-haiku-20241022", "messages": [{"role": "user", "content": "hi"}]}
    try:
        with respx.mock(assert_all_called=False) as mock:
            mock.post(f"{UPSTREAM}/v1/messages").respond(200, text=page)
            response = await AsyncClient().post(
                "/v1/chat/completions", body, content_type="application/json",
                headers={"Authorization": f"Bearer {alice_key}"},
            )  # fmt: skip
    finally:
        await close_pools()
    assert response.status_code == 502, response.content
    assert OPENAI_KEY.encode() not in response.content and b"x[redacted]y" in response.content
    try:
        row = await GatewayRequest.objects.aget(pk=response["X-Request-Id"])
        stored = row.error_message + "".join(
            [a.error async for a in Attempt.objects.filter(request_id=row.pk)]
        )
    finally:
        # The async ORM's thread keeps a connection of its own, which would keep the test database in use.
        await sync_to_async(connections.close_all)()
    assert OPENAI_KEY not in stored and "[redacted]" in stored
