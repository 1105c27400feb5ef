"""OpenAI embeddings adapter: the request goes to /v1/embeddings as the client sent it (§4.1), vectors back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.adapters.base import EmbeddingRequest, EmbeddingResult, ProviderConfig, ProviderError, Usage
from providers.adapters.calls import post_json
from providers.adapters.common import drop_none, int_of
from providers.vectors import floats_pack, vector_from_base64


def protocol_error(provider: str, detail: str) -> ProviderError:
    """An answer that is not the embeddings the request asked for: retried, like any broken answer."""
    return ProviderError(
        f"{provider}: {detail}",
        status=200,
        retryable=True,
        kind="protocol",
        extra={"provider": provider, "category": "protocol"},
    )


def vector_of(provider: str, value: Any) -> bytes:
    """One embedding as float32 bytes, from the base64 string or the float list a vendor sent."""
    if isinstance(value, str):
        try:
            return vector_from_base64(value)
        except ValueError as exc:
            raise protocol_error(provider, f"embedding is not base64 float32: {exc}") from None
    if isinstance(value, list):
        try:
            # array() checks every item is a number in C: a check in Python costs more than the whole call.
            return floats_pack(value)
        except TypeError:
            pass
    raise protocol_error(provider, "embedding is neither a list of numbers nor base64")


class OpenAIEmbeddingAdapter:
    name = "openai"
    takes_token_arrays = True
    default_base_url = "https://api.openai.com/v1"

    def url(self, config: ProviderConfig) -> str:
        return f"{(config.base_url or self.default_base_url).rstrip('/')}/embeddings"

    def headers(self, config: ProviderConfig) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if config.api_key:
            headers["authorization"] = f"Bearer {config.api_key}"
        return headers

    def build_body(self, request: EmbeddingRequest) -> dict[str, Any]:
        # base64 whatever the client asked: a quarter of the bytes of decimal floats, exact float32 values,
        # and what the openai SDK itself asks for. The door renders the client's encoding_format.
        return drop_none(
            {
                "model": request.model,
                "input": request.inputs,
                "dimensions": request.dimensions,
                "user": request.user,
                "encoding_format": "base64",
            }
        )

    def parse_response(self, payload: Mapping[str, Any], expected: int) -> EmbeddingResult:
        data = payload.get("data")
        if not isinstance(data, list) or len(data) != expected:
            count = len(data) if isinstance(data, list) else "no"
            raise protocol_error(self.name, f"{count} embeddings for {expected} inputs")
        by_index: dict[int, bytes] = {}
        for position, item in enumerate(data):
            if not isinstance(item, Mapping):
                raise protocol_error(self.name, "an embedding item is not an object")
            index = item.get("index", position)
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < expected:
                raise protocol_error(self.name, f"embedding index {index!r} out of range")
            by_index[index] = vector_of(self.name, item.get("embedding"))
        if len(by_index) != expected:
            raise protocol_error(self.name, "embedding indexes repeat")
        usage = payload.get("usage")
        counted = usage.get("prompt_tokens") if isinstance(usage, Mapping) else None
        return EmbeddingResult(
            vectors=[by_index[i] for i in range(expected)],
            # An OpenAI-compatible upstream that counts nothing is estimated by the router, as Gemini is.
            usage=Usage(prompt_tokens=int_of(counted)) if counted is not None else None,
            upstream_model=payload.get("model") if isinstance(payload.get("model"), str) else None,
        )

    async def embed(self, config: ProviderConfig, request: EmbeddingRequest) -> EmbeddingResult:
        payload = await post_json(config, self.url(config), self.headers(config), self.build_body(request))
        return self.parse_response(payload, len(request.inputs))
