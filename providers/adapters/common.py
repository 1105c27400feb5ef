"""What the vendor adapters share: HTTP calls, SSE parsing, error classification, content helpers."""

from __future__ import annotations

import json
import logging
import math
import re
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from providers import http as provider_http
from providers.adapters.base import ProviderConfig, ProviderError, StreamDelta, Usage

logger = logging.getLogger("providers.adapters")

MAX_MESSAGE_CHARS = 1000

# Status codes the vendor SDKs retry (§6.1); 529 is Anthropic's overload.
RETRYABLE_CATEGORIES = frozenset({"rate_limit", "overloaded", "server", "timeout", "conflict", "connection"})
GOOGLE_STATUS_CATEGORIES = {
    "RESOURCE_EXHAUSTED": "rate_limit",
    "UNAVAILABLE": "overloaded",
    "INTERNAL": "server",
    "DEADLINE_EXCEEDED": "timeout",
    "UNAUTHENTICATED": "auth",
    "PERMISSION_DENIED": "auth",
    "NOT_FOUND": "not_found",
}
# Anthropic mid-stream `error` events carry only a type; this is the status the same failure has over HTTP.
ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


# ---------------------------------------------------------------------------------------------------------
# JSON bodies and content parts


def drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def is_system(message: Mapping[str, Any]) -> bool:
    return message.get("role") in ("system", "developer")


def content_parts(content: Any) -> list[dict[str, Any]]:
    """OpenAI message content as a list of parts, with empty text parts dropped (vendors reject them)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            part = {"type": "text", "text": part}
        if part.get("type") == "text" and not part.get("text"):
            continue
        parts.append(part)
    return parts


def text_of(content: Any) -> str:
    """The text parts of OpenAI message content, concatenated."""
    return "".join(part["text"] for part in content_parts(content) if part.get("type") == "text")


def image_url_of(part: Mapping[str, Any]) -> str:
    image = part.get("image_url")
    return str(image.get("url", "")) if isinstance(image, Mapping) else str(image or "")


_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)$", re.DOTALL
)


def parse_data_url(url: str) -> tuple[str, str] | None:
    """`data:<mime>;base64,<data>` as (mime, data); None for any other URL."""
    match = _DATA_URL.match(url)
    if match is None:
        return None
    return match.group("mime") or "application/octet-stream", match.group("data")


def parse_json_object(text: str | None) -> dict[str, Any] | None:
    """Parse text as a JSON object; None when it is not one."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def tool_arguments(tool_call: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI tool call's `arguments` JSON string as the object Anthropic and Gemini expect."""
    return parse_json_object(tool_call.get("function", {}).get("arguments")) or {}


def unsupported_content(provider: str, part_type: Any) -> ProviderError:
    """Refuse content a vendor cannot take rather than drop it silently: the 400 the vendor would give."""
    return ProviderError(
        f"{provider}: unsupported content part type {part_type!r}",
        status=400,
        retryable=False,
        extra={"provider": provider, "category": "invalid_request", "local": True},
    )


def merge_turns(turns: Iterable[tuple[str, list[dict[str, Any]]]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Join consecutive turns of the same role and drop empty ones: Anthropic and Gemini want alternation."""
    merged: list[tuple[str, list[dict[str, Any]]]] = []
    for role, parts in turns:
        if not parts:
            continue
        if merged and merged[-1][0] == role:
            merged[-1][1].extend(parts)
        else:
            merged.append((role, list(parts)))
    return merged


def new_tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_call_delta(index: int, call_id: str, name: str, arguments: str = "") -> dict[str, Any]:
    return {"index": index, **tool_call(call_id, name, arguments)}


def tool_choice_name(tool_choice: Any) -> str | None:
    """The function name of a `{"type":"function","function":{"name":…}}` tool choice."""
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        if isinstance(function, Mapping) and function.get("name"):
            return str(function["name"])
    return None


def response_format_type(response_format: Mapping[str, Any] | None) -> str | None:
    """`json_object`, `json_schema` or None (text or absent)."""
    kind = (response_format or {}).get("type")
    return kind if kind in ("json_object", "json_schema") else None


def json_schema_of(response_format: Mapping[str, Any] | None) -> dict[str, Any] | None:
    spec = (response_format or {}).get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    return dict(schema) if isinstance(schema, Mapping) else None


def map_finish_reason(provider: str, native: str | None, mapping: Mapping[str, str]) -> str:
    if native is None:
        return "stop"
    mapped = mapping.get(native)
    if mapped is None:
        logger.warning("%s: unknown finish reason %r mapped to 'stop'", provider, native)
        return "stop"
    return mapped


def int_of(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# ---------------------------------------------------------------------------------------------------------
# Server-sent events


RAW_EVENT = "__raw__"  # lines that are not SSE fields, e.g. a bare JSON error body in a Gemini stream


@dataclass(slots=True)
class SSEEvent:
    event: str  # "" when the server sent no `event:` line
    data: str


async def iter_sse(lines: AsyncIterator[str]) -> AsyncIterator[SSEEvent]:
    """Decode SSE from lines (any of \\n, \\r\\n, \\r already split off). Comments such as `: keep-alive` are
    skipped; multiple `data:` lines join with \\n; a trailing event without its blank line is still delivered.
    """
    event = ""
    data: list[str] = []
    raw: list[str] = []
    async for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            if raw:
                yield SSEEvent(RAW_EVENT, "\n".join(raw))
                raw = []
            if data:
                yield SSEEvent(event, "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name not in ("id", "retry"):
            raw.append(line)
    if raw:
        yield SSEEvent(RAW_EVENT, "\n".join(raw))
    if data:
        yield SSEEvent(event, "\n".join(data))


def loads_event(provider: str, data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ProviderError(
            f"{provider}: malformed stream event: {redact(data, limit=200)!r}",
            retryable=True,
            kind="protocol",
            extra={"provider": provider, "category": "protocol"},
        ) from exc


# ---------------------------------------------------------------------------------------------------------
# Errors


# Every configured provider key (set by the catalog when it loads): a vendor's error body can echo any of
# them, e.g. a proxy in front of one vendor that forwards another's key, and none may reach a client or a row.
# Longest first, so a key that contains another is replaced whole, not around the shorter one. Shorter
# strings than this are no credential and would cut through ordinary words.
MIN_SECRET_CHARS = 8
_secrets: tuple[str, ...] = ()


def _longest_first(keys: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(keys), key=lambda key: (-len(key), key)))


def secrets_register(keys: Iterable[str | None]) -> None:
    global _secrets
    _secrets = _longest_first(key for key in keys if key and len(key) >= MIN_SECRET_CHARS)


def redact(text: str, api_key: str | None = None, *, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Text a provider sent, with every configured key (and `api_key`) replaced, then cut to `limit`.

    Replaced before the cut: a key cut in two by the limit would no longer match, and its start would leak.
    """
    secrets = _secrets if not api_key or api_key in _secrets else _longest_first((api_key, *_secrets))
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return text if len(text) <= limit else text[:limit] + "…"


def _redacted_or_none(value: str | None, api_key: str | None) -> str | None:
    return None if value is None else redact(value, api_key)


def _parse_seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _seconds_until(moment: datetime, now: float) -> float:
    return max(0.0, moment.timestamp() - now)


def retry_after_from_headers(headers: httpx.Headers, *, now: float | None = None) -> float | None:
    """`retry-after-ms`, then `retry-after` (seconds or HTTP-date), then Anthropic's exhausted-limit reset."""
    now = time.time() if now is None else now
    if (millis := headers.get("retry-after-ms")) and (seconds := _parse_seconds(millis)) is not None:
        return seconds / 1000
    if retry_after := headers.get("retry-after"):
        if (seconds := _parse_seconds(retry_after)) is not None:
            return seconds
        try:
            return _seconds_until(parsedate_to_datetime(retry_after), now)
        except (TypeError, ValueError):
            pass
    waits = []
    for limit in ("requests", "tokens", "input-tokens", "output-tokens"):
        reset = headers.get(f"anthropic-ratelimit-{limit}-reset")
        if reset and headers.get(f"anthropic-ratelimit-{limit}-remaining") == "0":
            try:
                waits.append(_seconds_until(datetime.fromisoformat(reset.replace("Z", "+00:00")), now))
            except ValueError:
                continue
    return max(waits) if waits else None


def retry_after_from_body(error: Mapping[str, Any]) -> float | None:
    """Gemini's `google.rpc.RetryInfo.retryDelay` (a protobuf duration such as "36s" or "20.75s")."""
    for detail in error.get("details") or []:
        if isinstance(detail, Mapping) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = str(detail.get("retryDelay", ""))
            if delay.endswith("s") and (seconds := _parse_seconds(delay[:-1])) is not None:
                return seconds
    return None


def _error_object(payload: Any) -> dict[str, Any]:
    """The `error` object of any vendor's error body; Gemini sometimes wraps it in a one-element array."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if isinstance(payload, Mapping):
        error = payload.get("error")
        if isinstance(error, Mapping):
            return dict(error)
        if isinstance(error, str):
            return {"message": error}
    return {}


def _category(status: int | None, vendor_type: str | None, code: str | None, text: str) -> str:
    if (
        status == 402
        or code == "insufficient_quota"
        or vendor_type in ("billing_error", "insufficient_quota")
        or "enforced_spend_limit_reached" in text
    ):
        return "billing"
    if "API_KEY_INVALID" in text:
        return "auth"
    if status is None or status < 400:
        return GOOGLE_STATUS_CATEGORIES.get(vendor_type or "", "server")
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status in (408, 504):
        return "timeout"
    if status == 409:
        return "conflict"
    if status == 413:
        return "too_large"
    if status == 429 or vendor_type == "RESOURCE_EXHAUSTED":
        return "rate_limit"
    if status in (503, 529) or vendor_type == "UNAVAILABLE":
        return "overloaded"
    if status >= 500:
        return "server"
    if code == "context_length_exceeded":
        return "context_length"
    return "invalid_request"


def error_from_body(
    provider: str,
    *,
    status: int | None,
    payload: Any,
    text: str = "",
    headers: httpx.Headers | None = None,
    api_key: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ProviderError:
    """Classify a vendor error body (and its response headers, when there was a response) per §6."""
    error = _error_object(payload)
    vendor_type = error.get("type") or error.get("status")
    vendor_type = str(vendor_type) if vendor_type else None
    code = error.get("code") if isinstance(error.get("code"), str) else None
    if status is None and isinstance(error.get("code"), int):
        status = error["code"]
    if status is None and vendor_type in ERROR_TYPE_STATUS:
        status = ERROR_TYPE_STATUS[vendor_type]
    category = _category(status, vendor_type, code, text or json.dumps(payload, default=str))
    retryable = category in RETRYABLE_CATEGORIES
    if headers is not None and (should_retry := headers.get("x-should-retry")) in ("true", "false"):
        retryable = should_retry == "true"
    retry_after = retry_after_from_headers(headers) if headers is not None else None
    if retry_after is None:
        retry_after = retry_after_from_body(error)
    detail = error.get("message") or text.strip() or "no error message"
    label = " ".join(str(part) for part in (provider, status, vendor_type) if part)
    return ProviderError(
        redact(f"{label}: {detail}", api_key),
        status=status,
        retryable=retryable,
        retry_after_s=retry_after,
        kind="http",
        extra={
            "provider": provider,
            "category": category,
            "type": _redacted_or_none(vendor_type, api_key),
            "code": _redacted_or_none(code, api_key),
            **(extra or {}),
        },
    )


def error_from_response(provider: str, response: httpx.Response, api_key: str | None) -> ProviderError:
    """Classify a non-2xx response whose body has been read."""
    text = response.text
    try:
        payload: Any = json.loads(text)
    except ValueError:
        payload = None
    return error_from_body(
        provider,
        status=response.status_code,
        payload=payload,
        text=text if payload is None else "",
        headers=response.headers,
        api_key=api_key,
    )


def error_from_transport(
    provider: str, exc: httpx.HTTPError, api_key: str | None, *, mid_stream: bool = False
) -> ProviderError:
    """A timeout, refused connection or broken stream as a ProviderError (no status: nothing was answered)."""
    description = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        kind, category, retryable = "timeout", "timeout", True
    elif isinstance(exc, httpx.UnsupportedProtocol):
        kind, category, retryable = "connection", "config", False
    elif mid_stream and isinstance(exc, httpx.RemoteProtocolError):
        kind, category, retryable = "protocol", "protocol", True
    else:
        kind, category, retryable = "connection", "connection", True
    where = "stream interrupted" if mid_stream else "request failed"
    return ProviderError(
        redact(f"{provider}: {where}: {type(exc).__name__}: {description}", api_key),
        status=None,
        retryable=retryable,
        kind=kind,
        extra={"provider": provider, "category": category},
    )


def incomplete_stream_error(provider: str) -> ProviderError:
    return ProviderError(
        f"{provider}: stream ended before a finish reason",
        retryable=True,
        kind="protocol",
        extra={"provider": provider, "category": "protocol"},
    )


# ---------------------------------------------------------------------------------------------------------
# Calls


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


class StreamDecoder(Protocol):
    """Turns one vendor's SSE events into StreamDeltas. `feed` may raise ProviderError for error events."""

    done: bool  # the vendor's explicit end marker was seen: stop reading
    usage: Usage | None

    def feed(self, event: SSEEvent) -> Iterable[StreamDelta]: ...

    def close(self) -> Iterable[StreamDelta]:
        """At the end of input: the final deltas (finish, then usage), or ProviderError if incomplete."""
        ...


async def decode_stream(
    events: AsyncGenerator[SSEEvent, None], decoder: StreamDecoder
) -> AsyncIterator[StreamDelta]:
    """Drive a decoder over an event stream. A failure after deltas went out is marked `partial` in `extra`,
    with the usage known so far, so the caller can record cost and knows not to retry transparently."""
    emitted = False
    try:
        async with aclosing(events) as stream:
            async for event in stream:
                for delta in decoder.feed(event):
                    emitted = True
                    yield delta
                if decoder.done:
                    break
        for delta in decoder.close():
            yield delta
    except ProviderError as exc:
        exc.extra["partial"] = emitted
        if decoder.usage is not None:
            exc.extra.setdefault("usage", decoder.usage)
        raise
