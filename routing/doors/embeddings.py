"""The embeddings door: OpenAI's /v1/embeddings dialect (ingress-wire-formats.md §4.1), any embedding model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config.api_errors import ApiError
from providers.embedding_input import InputError, embedding_inputs_parse
from providers.vectors import floats_unpack, vector_to_base64
from routing.doors.validation import header_fields, invalid, is_integer
from routing.pipeline.types import CompletionInput, EmbeddingParams, Embeddings

MAX_DIMENSIONS = 65_536
ENCODINGS = ("float", "base64")


def _optional_string(body: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise invalid(f"{name} must be a string of at most {limit} characters", name)
    return value


class EmbeddingsDoor:
    name = "embeddings"

    def parse(self, body: dict[str, Any], headers: Mapping[str, str]) -> CompletionInput:
        model = body.get("model")
        if not isinstance(model, str) or not model or len(model) > 200:
            raise invalid("you must provide a model parameter (a model id or alias)", "model")
        try:
            inputs = embedding_inputs_parse(body.get("input"))
        except InputError as exc:
            raise invalid(exc.message, exc.param) from None
        encoding = body.get("encoding_format")
        if encoding is None:
            encoding = "float"
        if encoding not in ENCODINGS:
            raise invalid("encoding_format must be 'float' or 'base64'", "encoding_format")
        dimensions = body.get("dimensions")
        if dimensions is not None and not (is_integer(dimensions) and 1 <= dimensions <= MAX_DIMENSIONS):
            raise invalid(f"dimensions must be an integer from 1 to {MAX_DIMENSIONS}", "dimensions")
        fields = header_fields(headers)
        return CompletionInput(
            messages=[],
            door=self.name,
            model=model,
            expected_output_tokens=0,  # embeddings write no tokens
            embedding=EmbeddingParams(
                inputs=inputs,
                dimensions=dimensions,
                encoding_format=encoding,
                user=_optional_string(body, "user", 256),
            ),
            **fields,
        )

    def render(self, embeddings: Embeddings, encoding_format: str) -> dict[str, Any]:
        """OpenAI's CreateEmbeddingResponse; base64 is the vectors' own bytes (little-endian float32)."""
        encode = vector_to_base64 if encoding_format == "base64" else floats_unpack
        tokens = embeddings.usage.prompt_tokens
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": index, "embedding": encode(vector)}
                for index, vector in enumerate(embeddings.vectors)
            ],
            "model": embeddings.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def error_body(self, error: ApiError) -> tuple[int, dict[str, Any]]:
        return error.status, error.body()


EMBEDDINGS = EmbeddingsDoor()

__all__ = ["EMBEDDINGS", "EmbeddingsDoor"]
