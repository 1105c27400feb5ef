"""The OpenAI error envelope for every /v1 error, and the exceptions services raise to produce one."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from config.rendering import dumps

logger = logging.getLogger(__name__)
View = TypeVar("View", bound=Callable[..., Awaitable[HttpResponseBase]])


class ApiError(Exception):
    """An error a client caused or must know about; rendered as the envelope with this status."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        error.update(self.extra)
        return {"error": error}


class InvalidRequest(ApiError):
    pass


class AuthenticationFailed(ApiError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class BudgetExceeded(ApiError):
    status = 402
    type = "budget_exceeded"
    code = "budget_exceeded"


class PermissionDenied(ApiError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFound(ApiError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class PayloadTooLarge(ApiError):
    status = 413
    code = "request_too_large"


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(ApiError):
    status = 502
    type = "upstream_error"
    code = "upstream_error"


class UpstreamTimeout(ApiError):
    status = 504
    type = "upstream_timeout"
    code = "upstream_timeout"


class InternalError(ApiError):
    status = 500
    type = "api_error"
    code = "internal_error"


class ServiceUnavailable(ApiError):
    status = 503
    type = "service_unavailable"
    code = "service_unavailable"


def error_response(error: ApiError) -> HttpResponse:
    response = HttpResponse(dumps(error.body()), status=error.status, content_type="application/json")
    for name, value in error.headers.items():
        response[name] = value
    return response


def _first_validation_message(detail: Any, path: str = "") -> tuple[str, str | None]:
    """DRF nests validation errors by field; the envelope names the first offending field."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = f"{path}.{key}" if path else str(key)
            if key == "non_field_errors":
                field = path or None  # type: ignore[assignment]
            return _first_validation_message(value, field or "")
    if isinstance(detail, list) and detail:
        for index, item in enumerate(detail):
            if isinstance(item, dict | list):
                return _first_validation_message(item, f"{path}[{index}]" if path else str(index))
        message, _ = _first_validation_message(detail[0], path)
        return message, path or None
    text = str(detail)
    return (f"{path}: {text}" if path else text), path or None


def api_error_from_exception(exc: Exception) -> ApiError | None:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(f"Request body is larger than {settings.ROUTER_MAX_BODY_BYTES} bytes")
    if isinstance(exc, drf_exceptions.ValidationError):
        message, param = _first_validation_message(exc.detail)
        return InvalidRequest(message, param=param, code="invalid_value")
    if isinstance(exc, drf_exceptions.ParseError):
        return InvalidRequest(f"Malformed request body: {exc.detail}", code="invalid_json")
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return InvalidRequest(str(exc.detail), code="unsupported_media_type")
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        return AuthenticationFailed(str(exc.detail))
    if isinstance(exc, drf_exceptions.PermissionDenied):
        return ApiError(str(exc.detail), status=403, code="permission_denied")
    if isinstance(exc, Http404 | drf_exceptions.NotFound):
        return NotFound("Not found")
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return ApiError(str(exc.detail), status=405, code="method_not_allowed")
    if isinstance(exc, drf_exceptions.Throttled):
        return RateLimited(
            str(exc.detail), headers={"Retry-After": str(int(getattr(exc, "wait", None) or 1))}
        )
    if isinstance(exc, drf_exceptions.APIException):
        return ApiError(str(exc.detail), status=exc.status_code, code=str(exc.default_code))
    return None


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponseBase:
    """handler404: the envelope under /v1 (clients parse every /v1 error the same way), the site's page elsewhere."""
    if request.path.startswith("/v1/"):
        return error_response(NotFound("No such endpoint", code="unknown_endpoint"))
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)  # type: ignore[arg-type]


def server_error(request: HttpRequest) -> HttpResponseBase:
    """handler500: an error no view caught. Under /v1 still the envelope, never a traceback."""
    if request.path.startswith("/v1/"):
        return error_response(InternalError("Internal server error"))
    from django.views.defaults import server_error as site_server_error

    return site_server_error(request)


def drf_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    error = api_error_from_exception(exc)
    if error is None:
        error = internal_error(exc)
    response = Response(error.body(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def database_unreachable(exc: BaseException) -> bool:
    """The database is down or the link to it broke: through the ORM (Django's wrappers) or the async pool
    (psycopg's own errors, a pool timeout). Both mean "try again shortly", not a bug."""
    import psycopg
    from django.db import InterfaceError, OperationalError

    # Not every DatabaseError: a constraint or a bad statement is a bug to see, not an outage to wait out.
    return isinstance(
        exc, OperationalError | InterfaceError | psycopg.OperationalError | psycopg.InterfaceError
    )


def internal_error(exc: BaseException) -> ApiError:
    if database_unreachable(exc):
        first_line = next(iter(str(exc).splitlines()), "")
        logger.error("database unavailable: %s: %s", exc.__class__.__name__, first_line)
        return ServiceUnavailable(
            "The database is unavailable; try again shortly",
            code="database_unavailable",
            headers={"Retry-After": "1"},
        )
    logger.exception("unhandled error", exc_info=exc)
    return InternalError("Internal server error")


def api_methods(*methods: str) -> Callable[[View], View]:
    """For async /v1 views: allowed methods (else 405), and every error, a bug included, in the envelope."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                allowed = ", ".join(methods)
                return error_response(
                    ApiError(
                        f"Use {allowed}", status=405, code="method_not_allowed", headers={"Allow": allowed}
                    )
                )
            try:
                return await view(request, *args, **kwargs)
            except ApiError as exc:
                return error_response(exc)
            except Exception as exc:  # noqa: BLE001 - a bug still answers in the envelope, without a traceback
                return error_response(internal_error(exc))

        return cast(View, wrapper)

    return decorate
