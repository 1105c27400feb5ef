"""ASGI entry point: the gateway's async endpoints skip what they do not use; everything else is plain Django.

- the doors (/v1/chat/*, /v1/messages, /v1/responses, /v1/embeddings): async views that manage their own
  database connections (an async pool, and ORM work in worker threads that hand their connection back).
  They run with only the request-id middleware and without Django's request_started/finished signals,
  whose sync receivers cost a new thread per request.
- the rest of /v1 (DRF views): the same lean middleware, with the signals (their sync views need them
  to give their database connection back).
- everything else (admin, dashboard): the full middleware stack of settings.MIDDLEWARE.
- the ASGI lifespan (which Django does not speak): a worker's start and stop, for config.prometheus.
"""

import asyncio
import contextlib
import gc
import os

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.utils.module_loading import import_string

from config.cancel_on import CancelOn
from config.lean_imports import optional_imports_skipped
from config.tracing import tracing_enabled, tracing_setup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# Before Django loads the apps (see ROUTER_PRELOAD_ENCODINGS): reading settings imports only the settings module.
import_string("providers.token_encodings.encodings_preload")(settings.ROUTER_PRELOAD_ENCODINGS)
with optional_imports_skipped(enabled=not tracing_enabled()):
    site_application = get_asgi_application()

from django.core.exceptions import RequestAborted  # noqa: E402
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix  # noqa: E402
from django.http import HttpRequest  # noqa: E402
from django.http.request import HttpHeaders  # noqa: E402
from django.urls import ResolverMatch, URLResolver, get_resolver, set_script_prefix  # noqa: E402
from django.utils.functional import cached_property  # noqa: E402

from config.prometheus import multiprocess_exit, multiprocess_setup  # noqa: E402

API_MIDDLEWARE = ["config.middleware.RequestIdMiddleware"]
ASYNC_GATEWAY_PREFIXES = ("/v1/chat/", "/v1/messages", "/v1/responses", "/v1/embeddings")
# The Django release whose ASGIHandler.handle the lean handler copies, and that method's source digest: a Django
# upgrade that changes it fails config/tests/test_asgi_handler.py until the copy is reviewed against it.
COPIED_FROM = ("5.2", "98faeb5bef800331e6a8002fbc96b30e4122a23438ae45a047190a531ea11323")


class ApiHeaders(HttpHeaders):
    """Django's request.headers with a get() that looks the name up rather than catching KeyError: each door
    asks for a dozen headers a request seldom carries (X-Router-*, Idempotency-Key, X-API-Key), and
    Mapping.get's raise-and-catch of a missing one cost 0.9 us against 0.14."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        item = self._store.get(key.replace("_", "-").lower())
        return default if item is None else item[1]


class ApiRequest(ASGIRequest):
    @cached_property
    def headers(self) -> ApiHeaders:  # type: ignore[override]
        return ApiHeaders(self.META)


class ApiASGIHandler(ASGIHandler):
    request_class = ApiRequest

    def __init__(self) -> None:
        super().__init__()
        self._matches: dict[tuple[URLResolver, str], ResolverMatch] = {}

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        """Django's resolve_request, remembering the match of a literal route (every door's and most of /v1):
        resolving walks the URLconf's patterns again on each request (9 us of a request's ~3 ms; 0.9% of its
        instructions). Only a route that is the path itself is kept, so the matches kept are at most the
        URLconf's literal routes: a route with captured values (an id) or a pattern (the /v1 catch-all 404) is
        resolved each time. Keyed by the resolver too: a changed ROOT_URLCONF resolves afresh."""
        if hasattr(request, "urlconf"):
            return super().resolve_request(request)
        path = request.path_info
        key = (get_resolver(), path)
        match = self._matches.get(key)
        if match is None:
            match = super().resolve_request(request)
            if match.route == path[1:] and not match.args and not match.kwargs:
                self._matches[key] = match
            return match
        request.resolver_match = match
        return match

    def load_middleware(self, is_async: bool = False) -> None:
        # settings.MIDDLEWARE swapped for the build alone (override_settings would also send setting_changed).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = API_MIDDLEWARE
        try:
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = full


class GatewayASGIHandler(ApiASGIHandler):
    """Django's ASGIHandler.handle without the request signals (see the module docstring)."""

    async def handle(self, scope, receive, send):  # type: ignore[no-untyped-def]
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            assert error_response is not None
            await self.send_response(error_response, send)
            return

        # Django serves in a task of its own and asyncio.wait-s it against the disconnect listener; here the
        # view runs in this task, which the listener cancels when the client goes away (one task and one
        # wait fewer per request). A client that went away cancels the view; streams log in a task of their own.
        disconnect = asyncio.create_task(self.listen_for_disconnect(receive))
        try:
            with CancelOn(disconnect) as client_left:
                try:
                    response = await self.run_get_response(request)
                    await self.send_response(response, send)
                except asyncio.CancelledError:
                    if not client_left.ours():
                        raise  # the server's own cancel (shutting down), not the client's leaving
        finally:
            disconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError, RequestAborted):
                await disconnect
        body_file.close()


api_application = ApiASGIHandler()
gateway_application = GatewayASGIHandler()


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    path = scope.get("path", "")
    if scope["type"] == "http" and path.startswith("/v1/"):
        handler = gateway_application if path.startswith(ASYNC_GATEWAY_PREFIXES) else api_application
        await handler(scope, receive, send)
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)
    else:
        await site_application(scope, receive, send)


def settle_heap() -> None:
    """Before the first request: every view module imported (not on the first call), then what start-up made
    moved out of the garbage collector's way (gc.freeze). A full collection no longer walks Django's and the
    catalog's long-lived objects: with 1,000 streams open, those walks paused the process for 0.3-0.8 s.

    Then the youngest generation's threshold (ROUTER_GC_GEN0_THRESHOLD): under load, the requests in flight
    keep thousands of young objects alive, so at Python's 700 the collector walked them all for next to no
    garbage (wrk at concurrency 64 for 15 s: 466 first- and 42 second-generation collections, ~4% of the CPU);
    at 10,000, 4 (0.15%). The hot path makes no cyclic garbage for it to find (providers.http.UpstreamClient)."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imports the URLconf and its views)
    gc.collect()
    gc.freeze()
    gc.set_threshold(settings.ROUTER_GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


async def lifespan(receive, send):  # type: ignore[no-untyped-def]
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            settle_heap()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            multiprocess_exit()
            await send({"type": "lifespan.shutdown.complete"})
            return


multiprocess_setup()
tracing_setup()
