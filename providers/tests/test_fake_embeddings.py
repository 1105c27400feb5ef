"""The fake upstream's embeddings: OpenAI's /v1/embeddings and Gemini's embedContent / batchEmbedContents,
with deterministic vectors that honour dimensions, the vendors' refusals, and fault rules."""

from __future__ import annotations

import base64
import math
from array import array
from collections.abc import Iterator

import httpx
import pytest

from providers.fake_upstream import FakeUpstreamProcess
from providers.fake_upstream.embeddings_wire import embedding_vector

GEMINI = "/v1beta/models/gemini-embedding-001"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstreamProcess]:
    with FakeUpstreamProcess() as process:
        yield process


@pytest.fixture
def client(upstream: FakeUpstreamProcess) -> Iterator[httpx.Client]:
    upstream.clear()
    with httpx.Client(base_url=upstream.url, timeout=10) as http:
        yield http


def openai(client: httpx.Client, **body: object) -> httpx.Response:
    return client.post("/v1/embeddings", json={"model": "text-embedding-3-small", **body})


def batch(client: httpx.Client, texts: list[str], **extra: object) -> httpx.Response:
    requests = [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}, **extra} for t in texts
    ]
    return client.post(f"{GEMINI}:batchEmbedContents", json={"requests": requests})


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


def test_the_same_text_always_gives_the_same_unit_vector_of_the_default_size(client):
    first = openai(client, input=["a cat", "a dog"]).json()
    again = openai(client, input="a cat").json()
    cat, dog = (item["embedding"] for item in first["data"])
    assert [item["index"] for item in first["data"]] == [0, 1]
    assert len(cat) == 1536 and cat == again["data"][0]["embedding"] and cat != dog
    assert norm(cat) == pytest.approx(1.0)
    assert first["usage"] == {"prompt_tokens": 4, "total_tokens": 4}  # ceil(5 / 4) per text
    large = openai(client, model="text-embedding-3-large", input="a cat").json()
    assert len(large["data"][0]["embedding"]) == 3072


def test_fewer_dimensions_are_the_head_of_the_full_vector_normalised_again(client):
    full = openai(client, input="a cat").json()["data"][0]["embedding"]
    short = openai(client, input="a cat", dimensions=8).json()["data"][0]["embedding"]
    scale = norm(full[:8])
    assert short == pytest.approx([v / scale for v in full[:8]])
    assert norm(short) == pytest.approx(1.0)


def test_base64_is_little_endian_float32_of_the_same_vector(client):
    data = openai(client, input="a cat", dimensions=4, encoding_format="base64").json()["data"][0]
    values = array("f")
    values.frombytes(base64.b64decode(data["embedding"]))
    assert values.tolist() == pytest.approx(embedding_vector("a cat", 4), rel=1e-6)


def test_token_arrays_are_embedded_and_counted_by_length(client):
    body = openai(client, input=[[1, 2, 3], [4, 5]]).json()
    assert len(body["data"]) == 2 and body["usage"]["prompt_tokens"] == 5


@pytest.mark.parametrize(
    "body",
    [
        {"input": ""},
        {"input": []},
        {"input": ["ok", ""]},
        {"input": ["x"] * 2049},
        {"input": "hi", "dimensions": 1537},
        {"input": "hi", "encoding_format": "binary"},
        {"model": "text-embedding-ada-002", "input": "hi", "dimensions": 8},
    ],
)
def test_openai_refusals_are_400s_in_its_envelope(client, body):
    response = openai(client, **body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_gemini_batch_answers_in_order_and_honours_output_dimensionality(client, upstream):
    response = batch(client, ["one", "two", "three"], outputDimensionality=16)
    assert response.status_code == 200
    vectors = [e["values"] for e in response.json()["embeddings"]]
    assert vectors == [pytest.approx(embedding_vector(t, 16)) for t in ["one", "two", "three"]]
    assert "usageMetadata" not in response.json()  # Gemini counts nothing for embeddings
    assert upstream.requests()[-1]["format"] == "gemini-embeddings"


def test_gemini_embed_content_gives_one_vector_for_its_parts(client):
    body = {"content": {"parts": [{"text": "one"}, {"text": "two"}]}}
    response = client.post(f"{GEMINI}:embedContent", json=body)
    assert len(response.json()["embedding"]["values"]) == 3072
    assert response.json()["embedding"]["values"] == pytest.approx(embedding_vector("one two", 3072))


def test_gemini_refuses_more_than_100_requests_and_a_model_that_is_not_the_batchs(client):
    too_many = batch(client, [f"t{i}" for i in range(101)])
    assert too_many.status_code == 400 and too_many.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "at most 100 requests" in too_many.json()["error"]["message"]
    wrong = client.post(
        f"{GEMINI}:batchEmbedContents",
        json={"requests": [{"model": "models/other", "content": {"parts": [{"text": "x"}]}}]},
    )
    assert wrong.status_code == 400


def test_a_rule_with_after_lets_the_first_requests_through(client, upstream):
    upstream.control(model="gemini-embedding-001", status=503, after=1, times=1)
    statuses = [batch(client, ["x"]).status_code for _ in range(3)]
    assert statuses == [200, 503, 200]
    assert batch(client, ["x"]).status_code == 200


def test_faults_apply_to_embeddings_in_each_vendors_error_shape(client, upstream):
    upstream.control(model="text-embedding-3-small", status=429, retry_after=2, times=1)
    limited = openai(client, input="hi")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    upstream.control(model="gemini-embedding-001", status=500, times=1)
    assert batch(client, ["x"]).json()["error"]["status"] == "INTERNAL"
