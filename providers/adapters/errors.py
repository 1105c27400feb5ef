"""Vendor failures as classified ProviderErrors: error bodies, non-2xx responses, transport errors, retry hints."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from providers.adapters.base import ProviderError
from providers.adapters.redaction import redact

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
