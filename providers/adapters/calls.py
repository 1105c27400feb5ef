"""The adapters' HTTP calls through the shared client: a JSON POST, and a POST answered by an SSE stream."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx
import orjson

from config.rendering import json_bytes
from providers import http as provider_http
from providers.adapters.base import ProviderConfig, ProviderError
from providers.adapters.errors import error_from_response, error_from_transport
from providers.adapters.redaction import redact
from providers.adapters.sse import SSEEvent, iter_sse


def json_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The adapter's headers (each sets content-type itself, in lower case), the JSON type when one did not."""
    return {"content-type": "application/json", **headers}


def _decode(response: httpx.Response) -> Any:
    """The answer's JSON; None when it is not JSON. orjson first (a tenth of the CPU; it skips the blank
    keep-alive lines DeepSeek sends before the body, as whitespace); the stdlib for what orjson refuses (NaN, a
    charset other than UTF-8)."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(response.text)
    except ValueError:
        return None


def timeout_for(config: ProviderConfig) -> httpx.Timeout:
    return provider_http.request_timeout(config.timeout_s)


async def post_json(
    config: ProviderConfig,
    url: str,
    headers: Mapping[str, str],
    body: Mapping[str, Any],
) -> dict[str, Any]:
    """POST a JSON body and return the JSON object answered; failures become classified ProviderErrors."""
    client = provider_http.get_client()
    try:
        response = await client.post(
            provider_http.upstream_url(url),
            content=json_bytes(body),
            headers=json_headers(headers),
            timeout=timeout_for(config),
        )
    except httpx.HTTPError as exc:
        raise error_from_transport(config.name, exc, config.api_key) from exc
    if not response.is_success:
        raise error_from_response(config.name, response, config.api_key)
    payload = _decode(response)
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
            "POST",
            provider_http.upstream_url(url),
            content=json_bytes(body),
            headers=json_headers(headers),
            timeout=timeout_for(config),
        ) as response:
            if not response.is_success:
                await response.aread()
                raise error_from_response(config.name, response, config.api_key)
            started = True
            async for event in iter_sse(response.aiter_lines()):
                yield event
    except httpx.HTTPError as exc:
        raise error_from_transport(config.name, exc, config.api_key, mid_stream=started) from exc
