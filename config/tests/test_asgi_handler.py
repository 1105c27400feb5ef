"""The lean ASGI handler copies Django's private ASGIHandler.handle without the request signals: a Django
upgrade that changes the original must fail here, and the signals it skips must really be skipped."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import io

import django
import httpx
import pytest
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished, request_started
from django.http.request import HttpHeaders
from django.test import RequestFactory
from django.urls import Resolver404, ResolverMatch, URLResolver

from config import asgi


def test_the_copied_handle_matches_djangos_own():
    release, digest = asgi.COPIED_FROM
    source = inspect.getsource(ASGIHandler.handle)
    assert django.get_version().startswith(release + ".")
    assert hashlib.sha256(source.encode()).hexdigest() == digest, (
        "Django's ASGIHandler.handle changed: review GatewayASGIHandler.handle (config/asgi.py) against it, "
        "then update COPIED_FROM"
    )


def _signals_for(path: str) -> list[str]:
    sent: list[str] = []

    def started(**kwargs: object) -> None:
        sent.append("started")

    def finished(**kwargs: object) -> None:
        sent.append("finished")

    request_started.connect(started)
    request_finished.connect(finished)
    try:

        async def call() -> int:
            transport = httpx.ASGITransport(app=asgi.application)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return (await client.post(path, json={})).status_code

        status = asyncio.run(call())
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert status == 401  # no key: answered by the door itself
    return sent


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path", ["/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/chat/compare"]
)
def test_the_doors_skip_the_request_signals(path, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    assert _signals_for(path) == []


@pytest.mark.django_db(transaction=True)
def test_the_rest_of_v1_keeps_them(settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    assert _signals_for("/v1/budget/reset") == ["started", "finished"]


@pytest.fixture
def resolves(monkeypatch) -> list[str]:
    """The paths the URLconf's root resolver walks its patterns for."""
    walked: list[str] = []
    real = URLResolver.resolve

    def spy(self: URLResolver, path: str) -> ResolverMatch:
        if self.pattern.regex.pattern == "^/":
            walked.append(path)
        return real(self, path)

    monkeypatch.setattr(URLResolver, "resolve", spy)
    return walked


def _resolved(handler: asgi.ApiASGIHandler, path: str, **attrs: object) -> ResolverMatch:
    request = RequestFactory().post(path)
    for name, value in attrs.items():
        setattr(request, name, value)
    match = handler.resolve_request(request)
    assert request.resolver_match is match
    return match


def test_a_route_that_captures_nothing_is_resolved_once(resolves):
    handler = asgi.GatewayASGIHandler()
    first = _resolved(handler, "/v1/chat/completions")
    assert _resolved(handler, "/v1/chat/completions") is first
    assert first.url_name == "v1-chat-completions"
    assert resolves == ["/v1/chat/completions"]
    assert _resolved(handler, "/v1/embeddings").url_name == "v1-embeddings"
    assert resolves == ["/v1/chat/completions", "/v1/embeddings"]


def test_a_route_with_an_id_is_resolved_each_time(resolves):
    handler = asgi.ApiASGIHandler()
    assert _resolved(handler, "/v1/responses/resp_1").kwargs == {"response_id": "resp_1"}
    assert _resolved(handler, "/v1/responses/resp_2").kwargs == {"response_id": "resp_2"}
    assert _resolved(handler, "/v1/responses/resp_1").kwargs == {"response_id": "resp_1"}
    assert len(resolves) == 3


def test_a_pattern_route_is_resolved_each_time(resolves):
    handler = asgi.GatewayASGIHandler()
    for path in ("/v1/chat/nowhere", "/v1/chat/nowhere", "/v1/chat/elsewhere"):
        assert _resolved(handler, path).url_name == "v1-unknown"  # the /v1 catch-all (its JSON 404)
    assert len(resolves) == 3
    assert handler._matches == {}  # junk paths cannot fill it


def test_another_urlconf_is_resolved_by_its_own_patterns(resolves, settings):
    handler = asgi.GatewayASGIHandler()
    _resolved(handler, "/v1/chat/completions")
    settings.ROOT_URLCONF = "config.tests.urls_other"
    assert _resolved(handler, "/v1/chat/completions").url_name == "other-completions"
    with pytest.raises(Resolver404):  # a request's own urlconf (set by a middleware) is honoured
        _resolved(handler, "/v1/chat/completions", urlconf="config.tests.urls_empty")


HEADERS_META = {
    "HTTP_AUTHORIZATION": "Bearer amr_x",
    "HTTP_X_ROUTER_MODE": "cheapest",
    "CONTENT_TYPE": "application/json",
    "CONTENT_LENGTH": "12",
    "REQUEST_METHOD": "POST",
    "PATH_INFO": "/v1/chat/completions",
}


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "authorization",
        "X-Router-Mode",
        "x_router_mode",
        "Content-Length",
        "X-API-Key",
        "Path-Info",
    ],
)
def test_the_api_headers_answer_as_djangos_own(name):
    ours, theirs = asgi.ApiHeaders(HEADERS_META), HttpHeaders(HEADERS_META)
    assert ours.get(name) == theirs.get(name)
    assert ours.get(name, "none") == theirs.get(name, "none")
    assert dict(ours) == dict(theirs)


@pytest.mark.parametrize("handler", [asgi.gateway_application, asgi.api_application])
def test_the_api_handlers_build_their_requests_with_them(handler):
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "query_string": b"",
        "headers": [(b"x-router-mode", b"cheapest"), (b"content-length", b"2")],
    }
    request, error = handler.create_request(scope, io.BytesIO(b"{}"))
    assert error is None
    assert type(request.headers) is asgi.ApiHeaders
    assert request.headers.get("X-Router-Mode") == "cheapest"
    assert request.headers.get("X-Router-Models") is None
    assert request.headers["content-length"] == "2"
