"""The adapters' JSON on the wire (providers.adapters.calls): orjson both ways, the stdlib for what it refuses."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from config.rendering import json_bytes
from providers.adapters.base import ProviderConfig, ProviderError
from providers.adapters.calls import post_json
from providers.adapters.sse import loads_event

URL = "https://upstream.test/v1/chat/completions"
CONFIG = ProviderConfig(name="openai", api_key="sk-test", base_url="https://upstream.test/v1", timeout_s=5)


def test_the_body_is_what_httpx_json_would_send() -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": 'héllo ✓ "q"'}],
        "temperature": 0.7,
    }
    sent = httpx.Request("POST", URL, json=body).content
    assert json_bytes(body) == sent


def test_what_orjson_refuses_is_encoded_by_the_stdlib() -> None:
    body = {"seed": 2**70, "messages": []}  # past orjson's 64-bit integers
    assert json.loads(json_bytes(body)) == body


async def test_a_post_sends_json_with_its_type_and_reads_the_answer(respx_mock: respx.Router) -> None:
    route = respx_mock.post(URL).respond(content=b'\n\n{"id": "x", "n": 1}')
    answer = await post_json(CONFIG, URL, {"authorization": "Bearer k"}, {"q": "é"})
    assert answer == {"id": "x", "n": 1}
    sent = route.calls.last.request
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers.get_list("content-type") == ["application/json"]
    assert json.loads(sent.content) == {"q": "é"}


async def test_an_answer_orjson_refuses_is_read_by_the_stdlib(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(content=b'{"score": NaN}')
    answer = await post_json(CONFIG, URL, {"content-type": "application/json"}, {})
    assert answer["score"] != answer["score"]  # NaN, as json.loads reads it


async def test_an_answer_in_another_charset_is_decoded_by_its_charset(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(
        content='{"text": "café"}'.encode("latin-1"),
        headers={"content-type": "application/json; charset=latin-1"},
    )
    assert await post_json(CONFIG, URL, {}, {}) == {"text": "café"}


async def test_an_answer_that_is_not_json_is_a_protocol_error(respx_mock: respx.Router) -> None:
    respx_mock.post(URL).respond(content=b"<html>bad gateway</html>")
    with pytest.raises(ProviderError) as raised:
        await post_json(CONFIG, URL, {}, {})
    assert raised.value.kind == "protocol"


def test_a_stream_event_is_read_by_orjson_and_what_it_refuses_by_the_stdlib() -> None:
    assert loads_event("openai", '{"choices": [{"delta": {"content": "é"}}]}') == {
        "choices": [{"delta": {"content": "é"}}]
    }
    event = loads_event("openai", '{"score": NaN}')
    assert event["score"] != event["score"]  # NaN, as json.loads reads it
    with pytest.raises(ProviderError) as raised:
        loads_event("openai", "{not json")
    assert raised.value.kind == "protocol"
