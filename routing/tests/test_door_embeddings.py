"""The embeddings door: parsing into the canonical request, and rendering vectors the openai SDK decodes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx2
import openai
import pytest

from config.api_errors import InvalidRequest
from config.rendering import dumps
from providers.adapters.base import Usage
from providers.pricing import Cost
from providers.vectors import floats_pack, floats_unpack
from routing.doors.embeddings import EmbeddingsDoor
from routing.pipeline.types import Embeddings

DOOR = EmbeddingsDoor()
VECTORS = [[0.1, -0.2, 0.30000001], [1.5, 2.5, -3.25]]


def parse(**body: Any) -> Any:
    return DOOR.parse({"model": "text-embedding-3-small", **body}, {})


def embeddings(vectors: list[list[float]] = VECTORS) -> Embeddings:
    return Embeddings(
        request_id="req_1",
        model="text-embedding-3-small",
        provider="openai",
        vectors=[floats_pack(v) for v in vectors],
        usage=Usage(prompt_tokens=7),
        usage_estimated=False,
        cost=Cost(Decimal("0.00000014"), Decimal(0), Decimal("0.00000014")),
        cached=False,
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
        latency_ms=12,
        attempts=[],
    )


def sdk_answering(body: dict[str, Any], sent: list[dict[str, Any]], *, strict: bool = True) -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(json.loads(request.content))
        return httpx2.Response(200, content=dumps(body), headers={"content-type": "application/json"})

    return openai.OpenAI(
        api_key="amr_test",
        base_url="http://gateway.test/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        _strict_response_validation=strict,
        max_retries=0,
    )


def test_a_string_is_one_input_of_an_embeddings_request_that_writes_nothing():
    inp = parse(input="hello")
    assert inp.door == "embeddings" and inp.kind == "embedding" and inp.messages == []
    assert inp.embedding.inputs == ["hello"] and inp.embedding.encoding_format == "float"
    assert inp.expected_output_tokens == 0 and inp.max_tokens is None and not inp.stream


def test_dimensions_encoding_user_and_cache_headers_are_taken():
    inp = DOOR.parse(
        {"model": "m", "input": [[1, 2]], "dimensions": 64, "encoding_format": "base64", "user": "u"},
        {"Cache-Control": "no-cache", "X-Client-Request-Id": "mine"},
    )
    assert inp.embedding.inputs == [[1, 2]] and inp.embedding.token_arrays
    assert (inp.embedding.dimensions, inp.embedding.encoding_format, inp.embedding.user) == (
        64,
        "base64",
        "u",
    )
    assert inp.cache_read is False and inp.cache_write is True and inp.client_request_id == "mine"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": ["a", ""]}, "input[1]"),
        ({"input": "a", "dimensions": True}, "dimensions"),
        ({"input": "a", "dimensions": 1.5}, "dimensions"),
        ({"input": "a", "user": 5}, "user"),
        ({"input": "a", "model": ""}, "model"),
        ({"input": "a", "encoding_format": "float16"}, "encoding_format"),
    ],
)
def test_a_bad_field_is_a_400_naming_it(body, param):
    with pytest.raises(InvalidRequest) as refused:
        parse(**body)
    assert refused.value.param == param and refused.value.status == 400


def test_base64_is_what_the_sdk_asks_for_by_default_and_decodes_to_the_float32_values():
    sent: list[dict[str, Any]] = []
    # Not strict: the SDK validates before it decodes, so strictness refuses OpenAI's own base64 answers too.
    client = sdk_answering(DOOR.render(embeddings(), "base64"), sent, strict=False)
    response = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert sent[0]["encoding_format"] == "base64"
    assert [item.embedding for item in response.data] == [floats_unpack(floats_pack(v)) for v in VECTORS]
    assert [item.index for item in response.data] == [0, 1]
    assert response.usage.prompt_tokens == response.usage.total_tokens == 7


def test_float_renders_the_same_float32_values_as_numbers():
    body = DOOR.render(embeddings(), "float")
    assert [item["embedding"] for item in body["data"]] == [floats_unpack(floats_pack(v)) for v in VECTORS]
    sent: list[dict[str, Any]] = []
    client = sdk_answering(body, sent)
    response = client.embeddings.create(model="text-embedding-3-small", input="a", encoding_format="float")
    assert sent[0]["encoding_format"] == "float"
    assert response.data[1].embedding == pytest.approx([1.5, 2.5, -3.25])
    assert set(body) == {"object", "data", "model", "usage"} and body["object"] == "list"
