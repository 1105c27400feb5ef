"""What the doors' request parsing shares: the 400 for a bad field, type tests, and header-set fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from config.api_errors import InvalidRequest

__all__ = ["HeaderFields", "header", "header_fields", "invalid", "is_integer", "is_number"]


class HeaderFields(TypedDict):
    cache_read: bool
    cache_write: bool
    client_request_id: str


def invalid(message: str, param: str) -> InvalidRequest:
    """The 400 for one field; each door words the message in its own dialect's style."""
    return InvalidRequest(message, param=param, code="invalid_value")


def is_integer(value: Any) -> bool:
    # bool is an int to Python, never to a client: true as a token count is a mistake worth telling.
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def header(headers: Mapping[str, str], name: str) -> str | None:
    # Django's request.headers ignores case; a plain dict (tests, internal callers) does not.
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def header_fields(headers: Mapping[str, str]) -> HeaderFields:
    """The canonical fields a client sets by header on any door: cache directives and its own request id."""
    directives = {d.strip().lower() for d in (header(headers, "cache-control") or "").split(",")}
    return HeaderFields(
        cache_read="no-cache" not in directives,
        cache_write="no-store" not in directives,
        client_request_id=(header(headers, "x-client-request-id") or "")[:200],
    )
