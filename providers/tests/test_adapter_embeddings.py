"""Embeddings adapters at the HTTP level: OpenAI's /v1/embeddings and Gemini's batchEmbedContents in chunks."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from typing import Any

import httpx
import pytest

from providers.adapters import get_embedding_adapter
from providers.adapters.base import EmbeddingRequest, ProviderConfig, ProviderError, Usage
from providers.adapters.gemini_embeddings import BATCH_LIMIT, GeminiEmbeddingAdapter
from providers.adapters.openai_embeddings import OpenAIEmbeddingAdapter
from providers.vectors import floats_pack, floats_unpack

OPENAI_URL = "https://api.openai.com/v1/embeddings"
OPENAI = ProviderConfig(
    name="openai", base_url="https://api.openai.com/v1", api_key="sk-secret-key", timeout_s=30
)
GEMINI_BASE = "https://generativelanguage.googleapis.com"
GEMINI_URL = f"{GEMINI_BASE}/v1beta/models/gemini-embedding-001:batchEmbedContents"
GEMINI = ProviderConfig(name="google", base_url=GEMINI_BASE, api_key="AIza-secret-key", timeout_s=30)
openai = OpenAIEmbeddingAdapter()
gemini = GeminiEmbeddingAdapter()


def b64(values: list[float]) -> str:
    return base64.b64encode(floats_pack(values)).decode()


def openai_answer(vectors: list[Any], prompt_tokens: int | None = 5, order: list[int] | None = None) -> dict:
    indexes = order if order is not None else list(range(len(vectors)))
    data = [{"object": "embedding", "index": i, "embedding": vectors[i]} for i in indexes]
    body: dict[str, Any] = {"object": "list", "data": data, "model": "text-embedding-3-small"}
    if prompt_tokens is not None:
        body["usage"] = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    return body


def text_vector(text: str) -> list[float]:
    """A distinct, exactly representable vector per text, so order can be checked after the round trip."""
    return [float(len(text)), float(sum(map(ord, text)) % 997), 0.5]


def gemini_handler(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    vectors = [{"values": text_vector(r["content"]["parts"][0]["text"])} for r in body["requests"]]
    return httpx.Response(200, json={"embeddings": vectors})


def test_the_registry_has_embeddings_for_openai_and_google_only():
    assert get_embedding_adapter("openai").takes_token_arrays is True
    assert get_embedding_adapter("google").takes_token_arrays is False
    assert get_embedding_adapter("anthropic") is None and get_embedding_adapter("deepseek") is None


# --------------------------------------------------------------------------------------------- OpenAI


async def test_openai_gets_the_request_as_sent_and_asks_for_base64(respx_mock):
    route = respx_mock.post(OPENAI_URL).respond(json=openai_answer([b64([0.25, -0.5])]))
    request = EmbeddingRequest(model="text-embedding-3-small", inputs=["hello"], dimensions=2, user="u1")
    await openai.embed(OPENAI, request)
    sent = route.calls.last.request
    assert json.loads(sent.content) == {
        "model": "text-embedding-3-small",
        "input": ["hello"],
        "dimensions": 2,
        "user": "u1",
        "encoding_format": "base64",
    }
    assert sent.headers["authorization"] == "Bearer sk-secret-key"


async def test_token_arrays_go_to_openai_as_they_are(respx_mock):
    route = respx_mock.post(OPENAI_URL).respond(json=openai_answer([b64([1.0]), b64([2.0])]))
    await openai.embed(OPENAI, EmbeddingRequest(model="text-embedding-3-small", inputs=[[1, 2, 3], [4]]))
    assert json.loads(route.calls.last.request.content)["input"] == [[1, 2, 3], [4]]


async def test_openai_vectors_come_back_in_input_order_whatever_order_they_were_sent_in(respx_mock):
    vectors = [b64([0.0, 1.0]), b64([2.0, 3.0]), b64([4.0, 5.0])]
    respx_mock.post(OPENAI_URL).respond(json=openai_answer(vectors, prompt_tokens=9, order=[2, 0, 1]))
    result = await openai.embed(
        OPENAI, EmbeddingRequest(model="text-embedding-3-small", inputs=["a", "b", "c"])
    )
    assert [floats_unpack(v) for v in result.vectors] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert result.usage == Usage(prompt_tokens=9) and result.sizes == [2, 2, 2]


async def test_a_float_answer_is_taken_too_as_float32(respx_mock):
    respx_mock.post(OPENAI_URL).respond(json=openai_answer([[0.1, -0.2, 0.3]]))
    result = await openai.embed(OPENAI, EmbeddingRequest(model="text-embedding-3-small", inputs=["x"]))
    assert floats_unpack(result.vectors[0]) == pytest.approx([0.1, -0.2, 0.3], rel=1e-6)
    assert len(result.vectors[0]) == 12


async def test_an_upstream_that_counts_nothing_leaves_usage_to_the_router(respx_mock):
    respx_mock.post(OPENAI_URL).respond(json=openai_answer([b64([1.0])], prompt_tokens=None))
    result = await openai.embed(OPENAI, EmbeddingRequest(model="text-embedding-3-small", inputs=["x"]))
    assert result.usage is None


@pytest.mark.parametrize(
    "payload",
    [
        openai_answer([b64([1.0])]),  # one vector for two inputs
        {"object": "list", "data": "nope"},
        openai_answer([b64([1.0]), "not base64!"]),
        openai_answer([b64([1.0]), base64.b64encode(b"abc").decode()]),  # not whole float32 values
        openai_answer([b64([1.0]), b64([2.0])], order=[0, 0]),
    ],
)
async def test_an_answer_that_is_not_the_embeddings_asked_for_is_a_retryable_protocol_error(
    respx_mock, payload
):
    respx_mock.post(OPENAI_URL).respond(json=payload)
    with pytest.raises(ProviderError) as raised:
        await openai.embed(OPENAI, EmbeddingRequest(model="text-embedding-3-small", inputs=["a", "b"]))
    assert raised.value.kind == "protocol" and raised.value.retryable


async def test_openai_errors_are_classified_for_retries_and_keys_redacted(respx_mock):
    respx_mock.post(OPENAI_URL).respond(
        429,
        json={
            "error": {
                "message": "slow down, sk-secret-key",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        },
        headers={"retry-after": "2"},
    )
    with pytest.raises(ProviderError) as raised:
        await openai.embed(OPENAI, EmbeddingRequest(model="text-embedding-3-small", inputs=["a"]))
    error = raised.value
    assert error.status == 429 and error.retryable and error.retry_after_s == 2
    assert "sk-secret-key" not in str(error)


async def test_a_bad_request_is_not_retried(respx_mock):
    respx_mock.post(OPENAI_URL).respond(
        400, json={"error": {"message": "'$.input' is invalid.", "type": "invalid_request_error"}}
    )
    with pytest.raises(ProviderError) as raised:
        await openai.embed(OPENAI, EmbeddingRequest(model="text-embedding-3-small", inputs=["a"]))
    assert raised.value.status == 400 and not raised.value.retryable


# --------------------------------------------------------------------------------------------- Gemini


async def test_gemini_gets_batch_embed_contents_with_the_model_in_every_request(respx_mock):
    route = respx_mock.post(GEMINI_URL).mock(side_effect=gemini_handler)
    request = EmbeddingRequest(model="gemini-embedding-001", inputs=["one", "two"], dimensions=768, user="u1")
    await gemini.embed(GEMINI, request)
    sent = route.calls.last.request
    assert sent.headers["x-goog-api-key"] == "AIza-secret-key" and "key=" not in str(sent.url)
    assert json.loads(sent.content) == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "one"}]},
                "outputDimensionality": 768,
            },
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "two"}]},
                "outputDimensionality": 768,
            },
        ]
    }


async def test_250_inputs_go_in_three_chunks_and_come_back_in_order(respx_mock):
    route = respx_mock.post(GEMINI_URL).mock(side_effect=gemini_handler)
    texts = [f"text number {i}" for i in range(250)]
    result = await gemini.embed(GEMINI, EmbeddingRequest(model="gemini-embedding-001", inputs=texts))
    sizes = sorted(len(json.loads(call.request.content)["requests"]) for call in route.calls)
    assert sizes == [50, BATCH_LIMIT, BATCH_LIMIT]
    assert [floats_unpack(v) for v in result.vectors] == [text_vector(t) for t in texts]
    assert result.usage is None  # Gemini counts nothing: the router estimates


async def test_a_chunk_failing_midway_fails_the_call_and_stops_the_other_chunks(respx_mock):
    started: list[str] = []
    cancelled: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        first = json.loads(request.content)["requests"][0]["content"]["parts"][0]["text"]
        started.append(first)
        if first == "t100":  # the second chunk
            return httpx.Response(
                503, json={"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
            )
        try:
            await asyncio.sleep(0 if first == "t0" else 5)
        except asyncio.CancelledError:
            cancelled.append(first)
            raise
        return gemini_handler(request)

    respx_mock.post(GEMINI_URL).mock(side_effect=handler)
    texts = [f"t{i}" for i in range(250)]
    with pytest.raises(ProviderError) as raised:
        await asyncio.wait_for(
            gemini.embed(GEMINI, EmbeddingRequest(model="gemini-embedding-001", inputs=texts)), 3
        )
    assert raised.value.status == 503 and raised.value.retryable
    assert sorted(started) == ["t0", "t100", "t200"] and cancelled == ["t200"]


async def test_token_arrays_to_gemini_are_a_local_400_with_no_call(respx_mock):
    route = respx_mock.post(GEMINI_URL).mock(side_effect=gemini_handler)
    with pytest.raises(ProviderError) as raised:
        await gemini.embed(GEMINI, EmbeddingRequest(model="gemini-embedding-001", inputs=[[1, 2]]))
    assert raised.value.status == 400 and not raised.value.retryable and raised.value.extra["local"]
    assert not route.called


async def test_a_gemini_answer_with_too_few_vectors_is_a_protocol_error(respx_mock):
    respx_mock.post(GEMINI_URL).respond(json={"embeddings": [{"values": [1.0]}]})
    with pytest.raises(ProviderError) as raised:
        await gemini.embed(GEMINI, EmbeddingRequest(model="gemini-embedding-001", inputs=["a", "b"]))
    assert raised.value.kind == "protocol"


async def test_gemini_errors_carry_the_retry_delay_from_the_body(respx_mock):
    respx_mock.post(GEMINI_URL).respond(
        429,
        json={
            "error": {
                "code": 429,
                "message": "quota",
                "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}],
            }
        },
    )
    with pytest.raises(ProviderError) as raised:
        await gemini.embed(GEMINI, EmbeddingRequest(model="gemini-embedding-001", inputs=["a"]))
    assert raised.value.retryable and raised.value.retry_after_s == 3


def test_float32_packing_is_little_endian_and_round_trips():
    packed = floats_pack([1.0, -2.5])
    assert packed == b"\x00\x00\x80\x3f\x00\x00\x20\xc0"
    assert floats_unpack(packed) == [1.0, -2.5]
    assert math.isclose(floats_unpack(floats_pack([0.1]))[0], 0.1, rel_tol=1e-7)


async def test_a_vector_with_something_else_than_numbers_is_a_protocol_error(respx_mock):
    respx_mock.post(GEMINI_URL).respond(json={"embeddings": [{"values": [1.0, "2"]}]})
    with pytest.raises(ProviderError) as raised:
        await gemini.embed(GEMINI, EmbeddingRequest(model="gemini-embedding-001", inputs=["a"]))
    assert raised.value.kind == "protocol"
