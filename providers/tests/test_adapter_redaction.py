"""Every configured provider key is redacted from what any provider says, wherever it says it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import respx

from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import ChatRequest, ProviderConfig, ProviderError
from providers.adapters.gemini import GeminiAdapter
from providers.adapters.openai import OpenAIAdapter
from providers.adapters.redaction import redact, secrets_register

OPENAI_KEY = "sk-proj-openai0123456789abcdefSECRET"
ANTHROPIC_KEY = "sk-ant-api03-anthropic0123456789SECRET"
GOOGLE_KEY = "AIzaSyGoogle0123456789abcdefSECRET"
ANTHROPIC = ProviderConfig("anthropic", "https://api.anthropic.com", ANTHROPIC_KEY, timeout_s=5)
OPENAI = ProviderConfig("openai", "https://api.openai.com/v1", OPENAI_KEY, timeout_s=5)
GOOGLE = ProviderConfig("google", "https://generativelanguage.googleapis.com", GOOGLE_KEY, timeout_s=5)
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def every_key_configured() -> Iterator[None]:
    """What the catalog does when it loads: registers every configured provider's key."""
    secrets_register([OPENAI_KEY, ANTHROPIC_KEY, GOOGLE_KEY])
    yield
    secrets_register([])


def _assert_no_key(text: str) -> None:
    for key in (OPENAI_KEY, ANTHROPIC_KEY, GOOGLE_KEY):
        assert key not in text
        assert key[:12] not in text, "a part of a key leaked"


async def _anthropic_error(status: int, **response: Any) -> ProviderError:
    with respx.mock:
        respx.post("https://api.anthropic.com/v1/messages").respond(status, **response)
        with pytest.raises(ProviderError) as raised:
            await AnthropicAdapter().complete(ANTHROPIC, ChatRequest(model="claude-3-5-haiku", messages=HI))
    return raised.value


async def test_another_vendors_key_in_an_error_body_is_redacted_also_mid_word(every_key_configured):
    body = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": f"forwarded header authorization=Bearer{OPENAI_KEY}xyz and x-goog-api-key:{GOOGLE_KEY}",
        },
    }
    error = await _anthropic_error(400, json=body)
    _assert_no_key(error.message)
    assert "Bearer[redacted]xyz" in error.message and "x-goog-api-key:[redacted]" in error.message
    assert error.status == 400 and error.extra["category"] == "invalid_request"


async def test_the_answering_vendors_own_key_is_redacted_even_unregistered():
    secrets_register([])
    body = {"type": "error", "error": {"type": "authentication_error", "message": f"bad key {ANTHROPIC_KEY}"}}
    error = await _anthropic_error(401, json=body)
    assert ANTHROPIC_KEY not in error.message and "bad key [redacted]" in error.message


async def test_a_key_echoed_in_a_plain_text_error_body_is_redacted(every_key_configured):
    error = await _anthropic_error(502, text=f"<html>upstream {OPENAI_KEY} refused</html>")
    _assert_no_key(error.message)
    assert "[redacted]" in error.message


async def test_a_key_echoed_in_the_error_code_is_redacted(every_key_configured):
    body = {"error": {"message": "nope", "type": "invalid_request_error", "code": f"key_{GOOGLE_KEY}"}}
    with respx.mock:
        respx.post("https://api.openai.com/v1/chat/completions").respond(400, json=body)
        with pytest.raises(ProviderError) as raised:
            await OpenAIAdapter().complete(OPENAI, ChatRequest(model="gpt-4o-mini", messages=HI))
    assert raised.value.extra["code"] == "key_[redacted]"


async def test_a_key_in_a_success_body_that_is_not_json_is_redacted(every_key_configured):
    with respx.mock:
        respx.post("https://api.openai.com/v1/chat/completions").respond(
            200, text=f"proxy saw {ANTHROPIC_KEY}"
        )
        with pytest.raises(ProviderError) as raised:
            await OpenAIAdapter().complete(OPENAI, ChatRequest(model="gpt-4o-mini", messages=HI))
    _assert_no_key(raised.value.message)
    assert "proxy saw [redacted]" in raised.value.message and raised.value.kind == "protocol"


async def test_a_key_across_the_cut_of_a_long_body_leaks_no_part_of_it(every_key_configured):
    # The key starts before character 200 and ends after it: cut first, its start would no longer match.
    text = "x" * 190 + OPENAI_KEY + "y" * 50
    with respx.mock:
        respx.post("https://api.openai.com/v1/chat/completions").respond(200, text=text)
        with pytest.raises(ProviderError) as raised:
            await OpenAIAdapter().complete(OPENAI, ChatRequest(model="gpt-4o-mini", messages=HI))
    _assert_no_key(raised.value.message)
    assert "[redacted]" in raised.value.message


async def test_a_key_in_a_malformed_stream_event_is_redacted(every_key_configured):
    stream = f"data: {{not json {ANTHROPIC_KEY}\n\n".encode()
    url = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    with respx.mock:
        respx.post(url__startswith=url).respond(
            200, content=stream, headers={"content-type": "text/event-stream"}
        )
        with pytest.raises(ProviderError) as raised:
            request = ChatRequest(model="gemini-2.5-flash", messages=HI, stream=True)
            async for _ in GeminiAdapter().stream(GOOGLE, request):
                pass
    _assert_no_key(raised.value.message)
    assert "[redacted]" in raised.value.message and raised.value.kind == "protocol"


def test_a_key_that_contains_another_is_redacted_whole():
    short = "sk-live-0123456789"
    secrets_register([short + "-project-ABCDEFGHIJ"])
    try:
        text = redact(f"got {short}-project-ABCDEFGHIJ", short)
    finally:
        secrets_register([])
    assert text == "got [redacted]"


def test_short_values_are_not_treated_as_keys():
    secrets_register(["", None, "abc"])
    try:
        assert redact("abc is a word") == "abc is a word"
    finally:
        secrets_register([])
