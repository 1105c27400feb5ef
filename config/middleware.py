"""Gives every HTTP request an id, exposed in logs and the X-Request-Id header, and notes the caller's address."""

from __future__ import annotations

import contextvars
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from config.logging import request_id_var

# The caller's address, for code that has no request at hand (the slow-down of bad API keys).
client_ip_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_ip", default=None)


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


class RequestIdMiddleware:
    """Sets the request id early; the completions view reuses it as the log row's id."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._acall(request)
        rid = new_request_id()
        request.request_id = rid  # type: ignore[attr-defined]
        token = request_id_var.set(rid)
        ip_token = client_ip_var.set(request.META.get("REMOTE_ADDR"))
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
            client_ip_var.reset(ip_token)
        response.setdefault("X-Request-Id", rid)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        rid = new_request_id()
        request.request_id = rid  # type: ignore[attr-defined]
        request_id_var.set(rid)
        client_ip_var.set(request.META.get("REMOTE_ADDR"))
        response = await self.get_response(request)
        response.setdefault("X-Request-Id", rid)
        response.setdefault("X-Content-Type-Options", "nosniff")
        return response
