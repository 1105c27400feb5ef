"""End to end: the openai SDK and LangChain's OpenAIEmbeddings against /v1/embeddings, on OpenAI and Gemini.

Through a live gateway in front of the fake upstream: vectors in input order (base64 by default, floats when
asked), Gemini in chunks of 100, every call held, logged once, charged, cached and counted in analytics.
"""

from __future__ import annotations

import gzip
import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from budgets.limits import budget_limit_set
from budgets.models import Budget, Reservation
from providers.fake_upstream.embeddings_wire import embedding_vector
from providers.models import ModelPrice
from providers.token_encodings import _data_dir
from routing.models import Attempt, GatewayRequest

pytestmark = pytest.mark.e2e
OPENAI_MODEL, GEMINI_MODEL = "text-embedding-3-small", "gemini-embedding-001"
MODELS = [OPENAI_MODEL, GEMINI_MODEL]
DEFAULT_DIMENSIONS = {OPENAI_MODEL: 1536, GEMINI_MODEL: 3072}
MILLION = Decimal(1_000_000)
TEXTS = ["The cat sat on the mat.", "A dog barked twice.", "Birds fly south in winter."]
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


def _row(request_id: str) -> GatewayRequest:
    return GatewayRequest.objects.get(pk=request_id)


def _price(model_id: str) -> Decimal:
    price = ModelPrice.objects.filter(model__model_id=model_id).order_by("-effective_from").first()
    assert price is not None
    return price.input_per_1m


def _post(gateway: Any, key: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/embeddings",
        json=body,
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=30,
    )


def _expected(text: str, dimensions: int) -> list[float]:
    return embedding_vector(text, dimensions)  # the fake's deterministic vector for this text


def _chunk_sizes(fake_upstream: Any) -> list[int]:
    return sorted(len(r["body"]["requests"]) for r in fake_upstream.requests(model=GEMINI_MODEL))


# --------------------------------------------------------------------------------------------- the openai SDK


@pytest.mark.parametrize("model", MODELS)
def test_the_sdk_default_base64_gets_every_vector_in_input_order(sdk, fake_upstream, model):
    raw = sdk.embeddings.with_raw_response.create(model=model, input=TEXTS)
    response = raw.parse()
    assert response.object == "list" and response.model == model
    assert [item.index for item in response.data] == [0, 1, 2]
    for text, item in zip(TEXTS, response.data, strict=True):
        assert len(item.embedding) == DEFAULT_DIMENSIONS[model]
        assert item.embedding == pytest.approx(_expected(text, DEFAULT_DIMENSIONS[model]), rel=1e-6, abs=1e-7)
    assert response.usage.prompt_tokens == response.usage.total_tokens > 0

    row = _row(raw.headers["x-request-id"])
    assert row.door == "embeddings" and row.status == "success" and row.model == model
    assert row.messages == TEXTS and row.prompt_text == "\n".join(TEXTS)
    assert row.input_tokens == response.usage.prompt_tokens and row.output_tokens == 0
    assert row.total_cost_usd == Decimal(row.input_tokens) * _price(model) / MILLION
    gemini = model == GEMINI_MODEL
    assert row.params["embedding"] == {
        "vectors": 3,
        "dimensions": DEFAULT_DIMENSIONS[model],
        "usage_estimated": gemini,
    }
    assert (raw.headers.get("x-router-usage-estimated") == "true") == gemini
    assert Attempt.objects.filter(request_id=row.id).count() == 1
    (hold,) = Reservation.objects.filter(request_id=row.id)
    assert hold.status == "settled" and hold.settled_usd == row.total_cost_usd <= hold.amount_usd
    assert Budget.objects.get(user=row.user).spent_usd == row.total_cost_usd


@pytest.mark.parametrize("model", MODELS)
def test_explicit_float_with_dimensions_gets_shortened_unit_vectors(sdk, fake_upstream, model):
    response = sdk.embeddings.create(
        model=model, input="hello world", encoding_format="float", dimensions=256
    )
    (item,) = response.data
    assert len(item.embedding) == 256
    assert item.embedding == pytest.approx(_expected("hello world", 256), rel=1e-6, abs=1e-7)
    sent = fake_upstream.requests()[-1]["body"]
    if model == OPENAI_MODEL:
        # Passed through as sent (as a list), asked for base64 whatever the client wants: exact float32.
        assert sent == {
            "model": model,
            "input": ["hello world"],
            "dimensions": 256,
            "encoding_format": "base64",
        }
    else:
        assert sent["requests"][0]["outputDimensionality"] == 256


def test_a_token_array_goes_to_openai_as_it_is_and_is_logged_as_text(sdk, fake_upstream):
    tokens = [791, 8415, 7731, 389, 279, 5634, 13]  # "The cat sat on the mat." in cl100k_base
    raw = sdk.embeddings.with_raw_response.create(model=OPENAI_MODEL, input=[tokens])
    assert fake_upstream.requests()[-1]["body"]["input"] == [tokens]
    assert raw.parse().usage.prompt_tokens == len(tokens)
    row = _row(raw.headers["x-request-id"])
    assert row.messages == [tokens] and row.prompt_text == "The cat sat on the mat."


# --------------------------------------------------------------------------------------------- LangChain


@pytest.fixture
def tiktoken_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LangChain tokenizes with tiktoken, which downloads cl100k_base: give it the bundled copy instead."""
    data_dir = _data_dir()
    assert data_dir is not None
    contents = gzip.decompress((data_dir / "cl100k_base.tiktoken.gz").read_bytes())
    (tmp_path / hashlib.sha1(CL100K_URL.encode()).hexdigest()).write_bytes(contents)  # tiktoken names it so
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))


@pytest.mark.parametrize("model", MODELS)
def test_langchain_openai_embeddings_embeds_documents_and_a_query(
    e2e, alice_key, fake_upstream, tiktoken_offline, model
):
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(
        model=model,
        base_url=e2e.url + "/v1",
        api_key=alice_key,
        max_retries=0,
        # LangChain sends OpenAI token arrays of its own tokenizing; other vendors need text (its docs say so).
        check_embedding_ctx_length=model == OPENAI_MODEL,
    )
    documents = embeddings.embed_documents(TEXTS[:2])
    query = embeddings.embed_query(TEXTS[0])
    dims = DEFAULT_DIMENSIONS[model]
    assert [len(v) for v in documents] == [dims, dims]
    assert query == pytest.approx(documents[0], rel=1e-6)
    sent = [r["body"] for r in fake_upstream.requests(model=model)]
    if model == OPENAI_MODEL:
        assert all(isinstance(item, list) for item in sent[0]["input"])  # token arrays, passed through
        assert documents[1] != pytest.approx(documents[0])
    else:
        assert documents[0] == pytest.approx(_expected(TEXTS[0], dims), rel=1e-6, abs=1e-7)
        assert [len(body["requests"]) for body in sent] == [2, 1]
    rows = GatewayRequest.objects.filter(door="embeddings").order_by("created_at")
    assert [r.prompt_text for r in rows] == ["\n".join(TEXTS[:2]), TEXTS[0]]
    assert all(r.status == "success" and r.total_cost_usd > 0 for r in rows)


# --------------------------------------------------------------------------------------------- Gemini chunks


def test_250_inputs_to_gemini_go_in_three_chunks_and_keep_their_order(sdk, fake_upstream):
    texts = [f"input number {i}" for i in range(250)]
    raw = sdk.embeddings.with_raw_response.create(model=GEMINI_MODEL, input=texts, dimensions=16)
    response = raw.parse()
    assert _chunk_sizes(fake_upstream) == [50, 100, 100]
    assert [item.index for item in response.data] == list(range(250))
    for text, item in zip(texts, response.data, strict=True):
        assert item.embedding == pytest.approx(_expected(text, 16), rel=1e-6, abs=1e-7)
    row = _row(raw.headers["x-request-id"])
    assert row.params["embedding"] == {"vectors": 250, "dimensions": 16, "usage_estimated": True}
    assert Attempt.objects.filter(request_id=row.id).count() == 1 and row.total_cost_usd > 0


def test_a_chunk_failing_midway_fails_the_call_once_and_charges_nothing(e2e, alice_key, fake_upstream):
    fake_upstream.control(model=GEMINI_MODEL, status=400, after=1, times=1)  # the second chunk to arrive
    response = _post(e2e, alice_key, {"model": GEMINI_MODEL, "input": [f"t{i}" for i in range(250)]})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "upstream_bad_request"
    (row,) = GatewayRequest.objects.filter(door="embeddings")
    assert row.id == response.headers["X-Request-Id"] and row.status == "error"
    assert row.total_cost_usd == 0 and row.input_tokens == 0
    assert Attempt.objects.filter(request_id=row.id).count() == 1
    assert list(Reservation.objects.filter(request_id=row.id).values_list("status", flat=True)) == [
        "released"
    ]
    assert Budget.objects.get(user=row.user).spent_usd == 0


def test_a_retryable_chunk_failure_retries_the_whole_call_and_charges_it_once(e2e, alice_key, fake_upstream):
    fake_upstream.control(model=GEMINI_MODEL, status=503, after=1, times=1)
    response = _post(e2e, alice_key, {"model": GEMINI_MODEL, "input": [f"t{i}" for i in range(150)]})
    assert response.status_code == 200, response.text
    row = _row(response.headers["X-Request-Id"])
    statuses = list(
        Attempt.objects.filter(request_id=row.id).order_by("index").values_list("status_code", flat=True)
    )
    assert statuses == [503, 200]
    assert row.total_cost_usd == Decimal(row.input_tokens) * _price(GEMINI_MODEL) / MILLION
    assert Budget.objects.get(user=row.user).spent_usd == row.total_cost_usd


# --------------------------------------------------------------------------------------------- like every call


def test_the_same_inputs_model_and_dimensions_are_a_free_cache_hit(e2e, alice_key, alice_http, fake_upstream):
    body = {"model": OPENAI_MODEL, "input": TEXTS, "dimensions": 64}
    first = _post(e2e, alice_key, {**body, "encoding_format": "float"})
    second = _post(e2e, alice_key, {**body, "encoding_format": "base64"})
    other = _post(e2e, alice_key, {**body, "dimensions": 32})
    assert [r.headers["X-Router-Cache"] for r in (first, second, other)] == ["miss", "hit", "miss"]
    assert second.headers["X-Router-Cost-Usd"] == "0"
    assert len(fake_upstream.requests(model=OPENAI_MODEL)) == 2
    client = openai.OpenAI(base_url=e2e.url + "/v1", api_key=alice_key, max_retries=0)
    hit = client.embeddings.create(
        model=OPENAI_MODEL, input=TEXTS, dimensions=64
    )  # base64, decoded by the SDK
    floats = [item["embedding"] for item in first.json()["data"]]
    assert [item.embedding for item in hit.data] == floats  # the same float32 values, bit for bit

    listed = alice_http.get("/analytics/requests", params={"search": "cat sat"}).json()["requests"]
    assert [(r["cached"], r["total_cost_usd"] > 0) for r in listed] == [
        (True, False),
        (False, True),
        (True, False),
        (False, True),
    ]
    first_row = _row(first.headers["X-Request-Id"])
    hit_row = _row(second.headers["X-Request-Id"])
    assert (
        hit_row.cached
        and hit_row.total_cost_usd == 0
        and hit_row.cache_savings_usd == first_row.total_cost_usd
    )
    assert hit_row.input_tokens == first_row.input_tokens
    usage = alice_http.get("/analytics/usage", params={"door": "embeddings"}).json()
    assert usage["total_requests"] == 4 and usage["cache_hits"] == 2
    assert (
        Decimal(str(usage["total_cost_usd"]))
        == first_row.total_cost_usd + _row(other.headers["X-Request-Id"]).total_cost_usd
    )


def test_a_failing_model_falls_back_like_a_chat_call(e2e, alice_key, fake_upstream):
    fake_upstream.control(model=OPENAI_MODEL, status=500)
    response = _post(
        e2e,
        alice_key,
        {"model": OPENAI_MODEL, "input": "hello"},
        **{"X-Router-Fallbacks": "text-embedding-3-large"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Router-Model"] == "text-embedding-3-large"
    assert len(response.json()["data"][0]["embedding"]) == 3072
    row = _row(response.headers["X-Request-Id"])
    attempts = Attempt.objects.filter(request_id=row.id).order_by("index")
    assert [(a.model, a.status_code) for a in attempts] == [
        (OPENAI_MODEL, 500),
        (OPENAI_MODEL, 500),
        ("text-embedding-3-large", 200),
    ]
    assert row.model == "text-embedding-3-large" and row.total_cost_usd > 0


def test_a_call_the_budget_cannot_hold_is_refused_before_any_provider_is_called(
    e2e, alice, alice_key, fake_upstream
):
    budget_limit_set(user_id=alice.pk, limit_usd=Decimal("0.0000001"))
    response = _post(e2e, alice_key, {"model": OPENAI_MODEL, "input": TEXTS})
    assert response.status_code == 402, response.text
    assert response.json()["error"]["code"] == "budget_exceeded"
    assert fake_upstream.requests() == []
    (row,) = GatewayRequest.objects.filter(door="embeddings")
    assert row.status == "error" and row.http_status == 402 and row.total_cost_usd == 0


# --------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": OPENAI_MODEL, "input": []}, "input", "invalid_value"),
        ({"model": OPENAI_MODEL, "input": ""}, "input", "invalid_value"),
        ({"model": OPENAI_MODEL, "input": ["fine", ""]}, "input[1]", "invalid_value"),
        ({"model": OPENAI_MODEL, "input": ["x"] * 2049}, "input", "invalid_value"),
        ({"model": OPENAI_MODEL, "input": ["text", [1, 2]]}, "input[1]", "invalid_value"),
        ({"model": OPENAI_MODEL}, "input", "invalid_value"),
        ({"input": "hi"}, "model", "invalid_value"),
        ({"model": GEMINI_MODEL, "input": [[1, 2, 3]]}, "input", "invalid_value"),
        ({"model": GEMINI_MODEL, "input": [5, 6]}, "input", "invalid_value"),
        ({"model": "gpt-4o-mini", "input": "hi"}, "model", "model_not_found"),
        ({"model": "no-such-model", "input": "hi"}, "model", "model_not_found"),
        (
            {"model": OPENAI_MODEL, "input": "hi", "encoding_format": "binary"},
            "encoding_format",
            "invalid_value",
        ),
        ({"model": OPENAI_MODEL, "input": "hi", "dimensions": 0}, "dimensions", "invalid_value"),
    ],
)
def test_bad_input_is_a_400_in_the_openai_envelope_and_writes_nothing(
    e2e, alice_key, fake_upstream, body, param, code
):
    before = (GatewayRequest.objects.count(), Reservation.objects.count())
    response = _post(e2e, alice_key, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["code"] == code
    assert (GatewayRequest.objects.count(), Reservation.objects.count()) == before
    assert fake_upstream.requests() == []


def test_the_kind_is_named_both_ways(e2e, alice_key, alice_http, fake_upstream):
    to_chat_model = _post(e2e, alice_key, {"model": "gpt-4o-mini", "input": "hi"}).json()["error"]
    assert "chat model, not an embedding model" in to_chat_model["message"]
    chat = alice_http.post(
        "/chat/completions", json={"model": OPENAI_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert chat.status_code == 400
    error = chat.json()["error"]
    assert error["code"] == "model_not_found" and "embedding model, not a chat model" in error["message"]
    assert GatewayRequest.objects.count() == 0 and fake_upstream.requests() == []


def test_models_carry_their_kind(sdk):
    kinds = {m.id: m.model_extra["kind"] for m in sdk.models.list()}
    assert kinds[OPENAI_MODEL] == kinds[GEMINI_MODEL] == kinds["text-embedding-3-large"] == "embedding"
    assert kinds["gpt-4o-mini"] == "chat"
    assert sdk.models.retrieve(GEMINI_MODEL).model_extra["kind"] == "embedding"
