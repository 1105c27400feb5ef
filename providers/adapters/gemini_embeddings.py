"""Gemini embeddings adapter: batchEmbedContents in chunks of at most 100 inputs, joined back in order (§4.2-4.3).

The chunks of one call go out a few at a time and stand or fall together: when one fails the others are
cancelled and the call raises that chunk's error, so the router retries or falls back on the whole call and
charges for nothing it did not return. Gemini reports no token counts; the router estimates them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, cast

from providers.adapters.base import EmbeddingRequest, EmbeddingResult, ProviderConfig, ProviderError
from providers.adapters.calls import post_json
from providers.adapters.common import drop_none
from providers.adapters.gemini import GeminiAdapter
from providers.adapters.openai_embeddings import protocol_error, vector_of

BATCH_LIMIT = 100  # "BatchEmbedContentsRequest.requests: at most 100 requests can be batched"
PARALLEL_CHUNKS = 4  # chunks of one call in flight at once


def token_arrays_refused(provider: str) -> ProviderError:
    return ProviderError(
        f"{provider}: embeddings take text, not token arrays",
        status=400,
        retryable=False,
        extra={"provider": provider, "category": "invalid_request", "local": True},
    )


class GeminiEmbeddingAdapter:
    name = "google"
    takes_token_arrays = False

    def __init__(self) -> None:
        self._chat = GeminiAdapter()  # the same base URL, API version and key header

    def url(self, config: ProviderConfig, model: str) -> str:
        return f"{self._chat._model_url(config, model)}:batchEmbedContents"

    def build_body(self, model: str, texts: Sequence[str], dimensions: int | None) -> dict[str, Any]:
        name = f"models/{model.removeprefix('models/')}"  # in the path and in every request (genai's t_model)
        return {
            "requests": [
                drop_none(
                    {
                        "model": name,
                        "content": {"parts": [{"text": text}]},
                        "outputDimensionality": dimensions,
                    }
                )
                for text in texts
            ]
        }

    def parse_response(self, payload: Mapping[str, Any], expected: int) -> list[bytes]:
        embeddings = payload.get("embeddings")
        if not isinstance(embeddings, list) or len(embeddings) != expected:
            count = len(embeddings) if isinstance(embeddings, list) else "no"
            raise protocol_error(self.name, f"{count} embeddings for {expected} inputs")
        vectors = []
        for item in embeddings:
            values = item.get("values") if isinstance(item, Mapping) else None
            vectors.append(vector_of(self.name, values))
        return vectors

    async def _chunk(
        self, config: ProviderConfig, request: EmbeddingRequest, texts: Sequence[str], gate: asyncio.Semaphore
    ) -> list[bytes]:
        async with gate:
            payload = await post_json(
                config,
                self.url(config, request.model),
                self._chat.headers(config),
                self.build_body(request.model, texts, request.dimensions),
            )
        return self.parse_response(payload, len(texts))

    async def embed(self, config: ProviderConfig, request: EmbeddingRequest) -> EmbeddingResult:
        if not all(isinstance(text, str) for text in request.inputs):
            raise token_arrays_refused(self.name)
        texts = cast(list[str], request.inputs)
        gate = asyncio.Semaphore(PARALLEL_CHUNKS)
        tasks = [
            asyncio.ensure_future(self._chunk(config, request, texts[i : i + BATCH_LIMIT], gate))
            for i in range(0, len(texts), BATCH_LIMIT)
        ]
        try:
            chunks = await asyncio.gather(*tasks)
        except BaseException:
            # One chunk failed (or the call was cancelled): the rest are of no use, so none keeps running.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return EmbeddingResult(vectors=[vector for chunk in chunks for vector in chunk], usage=None)
