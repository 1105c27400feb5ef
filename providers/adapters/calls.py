"""The adapters' HTTP calls through the shared client: a JSON POST, and a POST answered by an SSE stream."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import httpx

from providers import http as provider_http
from providers.adapters.base import ProviderConfig, ProviderError
from providers.adapters.errors import error_from_response, error_from_transport
from providers.adapters.redaction import redact
from providers.adapters.sse import SSEEvent, iter_sse


def timeout_for(config: ProviderConfig) -> httpx.Timeout:
    return provider_http.request_timeout(config.timeout_s)


async def post_json(
    config: ProviderConfig,
    url: str,
    headers: Mapping[str, str],
    body: Mapping[str, Any],
    *,
    loads: Callable[[str], Any] = json.loads,
) -> dict[str, Any]:
    """POST a JSON body and return the JSON object answered; failures become classified ProviderErrors.

    `loads` parses the answer: orjson for bodies of many numbers (Gemini's embeddings, 10x faster).
    """
    client = provider_http.get_client()
    try:
        response = await client.post(url, json=body, headers=dict(headers), timeout=timeout_for(config))
    except httpx.HTTPError as exc:
        raise error_from_transport(config.name, exc, config.api_key) from exc
    if not response.is_success:
        raise error_from_response(config.name, response, config.api_key)
    try:
        # json.loads skips the blank keep-alive lines DeepSeek sends before the body.
        payload = loads(response.text)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise ProviderError(
            f"{config.name}: response is not a JSON object: {redact(response.text, config.api_key, limit=200)!r}",
            status=response.status_code,
            retryable=True,
            kind="protocol",
            extra={"provider": config.name, "category": "protocol"},
        )
    return payload


async def stream_sse(
    config: ProviderConfig, url: str, headers: Mapping[str, str], body: Mapping[str, Any]
) -> AsyncGenerator[SSEEvent, None]:
    """POST a JSON body and yield the SSE events of a 2xx answer; errors become classified ProviderErrors."""
    client = provider_http.get_client()
    started = False
    try:
        async with client.stream(
            "POST", url, json=body, headers=dict(headers), timeout=timeout_for(config)
        ) as response:
            if not response.is_success:
                await response.aread()
                raise error_from_response(config.name, response, config.api_key)
            started = True
            async for event in iter_sse(response.aiter_lines()):
                yield event
    except httpx.HTTPError as exc:
        raise error_from_transport(config.name, exc, config.api_key, mid_stream=started) from exc
