"""Embeddings in OpenAI's /v1/embeddings and Gemini's embedContent / batchEmbedContents wire formats.

Vectors are deterministic: a text (or token array) always gives the same unit vector, drawn from SHAKE-256 of
it, so a shorter `dimensions` is the longer vector's head, normalised again (as the vendors' truncation is).
Token counts are ceil(characters / 4) per text (at least 1) and a token array's length; Gemini reports none.
"""

import base64
import hashlib
import math
import sys
from array import array
from dataclasses import dataclass
from typing import Any, ClassVar

from providers.fake_upstream.wire import JsonObject, WireError

DEFAULT_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "gemini-embedding-001": 3072,
}
FALLBACK_DIMENSIONS = 1536
MAX_INPUTS = 2048
GEMINI_BATCH_LIMIT = 100
CHARS_PER_TOKEN = 4


def default_dimensions(model: str) -> int:
    return DEFAULT_DIMENSIONS.get(model.removeprefix("models/"), FALLBACK_DIMENSIONS)


def embedding_vector(item: str | list[int], dimensions: int) -> list[float]:
    """The unit vector of a text or token array: the same input always gives the same vector."""
    seed = item if isinstance(item, str) else "tokens:" + ",".join(map(str, item))
    raw = array("h")
    raw.frombytes(hashlib.shake_256(seed.encode()).digest(2 * dimensions))
    if sys.byteorder == "big":
        raw.byteswap()
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]


def float32_base64(values: list[float]) -> str:
    packed = array("f", values)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def input_tokens(item: str | list[int]) -> int:
    return max(1, math.ceil(len(item) / CHARS_PER_TOKEN)) if isinstance(item, str) else len(item)


def _dimensions(value: Any, model: str, name: str) -> int:
    most = default_dimensions(model)
    if value is None:
        return most
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise WireError(f"'{name}' must be an integer from 1 to {most} for {model}", param=name)
    return value


@dataclass(slots=True)
class EmbeddingAsk:
    """One embeddings request: what the vectors depend on."""

    model: str
    inputs: list[str | list[int]]
    dimensions: int
    base64: bool = False


class EmbeddingFormat:
    """One vendor's embeddings requests and answers; errors are rendered by that vendor's chat format."""

    name: ClassVar[str]

    def parse(self, body: JsonObject, path_model: str | None, action: str | None) -> EmbeddingAsk:
        raise NotImplementedError

    def response(self, ask: EmbeddingAsk, action: str | None) -> JsonObject:
        raise NotImplementedError


class OpenAIEmbeddings(EmbeddingFormat):
    name = "openai-embeddings"

    def parse(self, body: JsonObject, path_model: str | None, action: str | None) -> EmbeddingAsk:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise WireError("you must provide a model parameter", param="model")
        inputs = self._inputs(body.get("input"))
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise WireError("'encoding_format' must be 'float' or 'base64'", param="encoding_format")
        if body.get("dimensions") is not None and model == "text-embedding-ada-002":
            raise WireError("This model does not support specifying dimensions.", param="dimensions")
        dimensions = _dimensions(body.get("dimensions"), model, "dimensions")
        return EmbeddingAsk(model, inputs, dimensions, base64=encoding == "base64")

    @staticmethod
    def _inputs(value: Any) -> list[str | list[int]]:
        invalid = WireError("'$.input' is invalid. Please check the API reference.", param="input")
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_INPUTS:
            raise invalid
        if all(isinstance(t, int) and not isinstance(t, bool) for t in value):
            value = [value]  # one token array
        for item in value:
            if isinstance(item, str):
                if not item:
                    raise invalid
            elif not (
                isinstance(item, list)
                and 1 <= len(item) <= MAX_INPUTS
                and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in item)
            ):
                raise invalid
        return value

    def response(self, ask: EmbeddingAsk, action: str | None) -> JsonObject:
        data = []
        for index, item in enumerate(ask.inputs):
            vector = embedding_vector(item, ask.dimensions)
            encoded: Any = float32_base64(vector) if ask.base64 else vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(input_tokens(item) for item in ask.inputs)
        return {
            "object": "list",
            "data": data,
            "model": ask.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


class GeminiEmbeddings(EmbeddingFormat):
    name = "gemini-embeddings"

    def parse(self, body: JsonObject, path_model: str | None, action: str | None) -> EmbeddingAsk:
        model = path_model or ""
        if action == "embedContent":
            text, dimensions = self._one(body, model, "")
            return EmbeddingAsk(model, [text], dimensions)
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise WireError("'requests' must be a non-empty array", param="requests")
        if len(requests) > GEMINI_BATCH_LIMIT:
            raise WireError(
                f"* BatchEmbedContentsRequest.requests: at most {GEMINI_BATCH_LIMIT} requests can be batched"
            )
        texts: list[str | list[int]] = []
        sizes = set()
        for index, request in enumerate(requests):
            if not isinstance(request, dict):
                raise WireError(f"Invalid value at 'requests[{index}]'")
            if request.get("model") != f"models/{model}":
                raise WireError(
                    f"Model in requests[{index}] ({request.get('model')!r}) must match the batch model "
                    f"'models/{model}'"
                )
            text, dimensions = self._one(request, model, f"requests[{index}].")
            texts.append(text)
            sizes.add(dimensions)
        if len(sizes) > 1:
            raise WireError("every request of a batch must ask for the same outputDimensionality")
        return EmbeddingAsk(model, texts, sizes.pop())

    @staticmethod
    def _one(request: JsonObject, model: str, where: str) -> tuple[str, int]:
        content = request.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts:
            raise WireError(f"Invalid value at '{where}content': parts must be a non-empty array")
        texts = [
            part["text"] for part in parts if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        if len(texts) != len(parts):
            raise WireError(f"Invalid value at '{where}content.parts': text parts only")
        text = " ".join(texts)  # several parts make one combined embedding, as Gemini's do
        if not text:
            raise WireError(f"Invalid value at '{where}content': the text is empty")
        return text, _dimensions(request.get("outputDimensionality"), model, "outputDimensionality")

    def response(self, ask: EmbeddingAsk, action: str | None) -> JsonObject:
        vectors = [{"values": embedding_vector(item, ask.dimensions)} for item in ask.inputs]
        if action == "embedContent":
            return {"embedding": vectors[0]}
        return {"embeddings": vectors}
