"""The one shared, pooled async httpx client for upstream calls, one per event loop: the patch point.

Its interface is httpx; beneath it, aiohttp's transport by default (ROUTER_UPSTREAM_TRANSPORT=aiohttp, the
transport the `openai` SDK itself offers): its C HTTP parser and simpler pool took a quarter off the gateway's CPU
per request (bench/bench_profile.py: 4.96-5.89 -> 3.75-4.06 ms, same run). "httpx" keeps httpx's own httpcore
transport (respx, which mocks httpcore, needs it; the tests switch to it wherever respx is in use).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import httpx
from django.conf import settings
from httpx_aiohttp import AiohttpTransport

# Sized for a gateway holding many concurrent upstream streams; keep-alive saves a TLS handshake per call.
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30.0)
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
USER_AGENT = "ai-model-router/0.1"

# An httpx pool is bound to the loop that first used it, so each running loop gets its own client. Keys are
# weak so a loop that is garbage collected (tests make one per test) does not keep its client alive.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


@contextlib.contextmanager
def _faults_as_httpx() -> Iterator[None]:
    """aiohttp's faults as the httpx errors httpcore raises for them, where httpx_aiohttp's map differs (it
    maps every connection error to ConnectTimeout, so a refused connection or a hang-up read as timeouts): a
    refused or unreachable host is a connect error, a server that hangs up or a body cut short a protocol
    error, a reset socket a read error; timeouts stay timeouts."""
    try:
        yield
    except httpx.HTTPError as exc:
        cause = exc.__cause__
        if cause is None or isinstance(cause, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
            raise
        if isinstance(cause, aiohttp.ClientConnectorError):  # refused, unreachable, DNS: never a timeout
            raise httpx.ConnectError(str(cause) or type(cause).__name__) from cause
        if isinstance(cause, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
            raise httpx.RemoteProtocolError(str(cause) or type(cause).__name__) from cause
        if isinstance(cause, aiohttp.ClientOSError):  # a connector error was taken above
            raise httpx.ReadError(str(cause) or type(cause).__name__) from cause
        raise


class _Body(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _faults_as_httpx():
            async for chunk in self._inner:
                yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class UpstreamTransport(AiohttpTransport):
    """httpx_aiohttp's transport with httpcore's classification of faults (see _faults_as_httpx)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _faults_as_httpx():
            response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Body(response.stream)
        return response


def _transport() -> httpx.AsyncBaseTransport | None:
    if settings.ROUTER_UPSTREAM_TRANSPORT == "httpx":
        return None  # httpx's own
    return UpstreamTransport(limits=LIMITS)


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing: what a vendor sets (Cloudflare's __cf_bm, say) is not sent on anyone else's
    call."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class UpstreamClient(httpx.AsyncClient):
    """The shared client, minus its cookie jar. One client serves every caller, so a cookie set on one
    caller's answer must not ride along on the next caller's request; and extracting them cost ~2% of the
    gateway's CPU per request (httpx wraps each response for http.cookiejar, even one that sets none).

    And an answer is freed when its caller lets go of it: httpx binds each response's stream to the response
    (BoundAsyncStream, which sets `elapsed` when it closes), a reference cycle that kept every answer, its
    body and aiohttp's objects beneath it until the garbage collector ran. Once the body is read (or the
    stream is closed) the response's stream is a spent one, and the cycle is gone."""

    @property  # type: ignore[override,misc]  # read-only: nothing can put a cookie into the shared client
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    async def send(self, request: httpx.Request, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        response = await super().send(request, stream=stream, **kwargs)
        if not stream:
            response.stream = _SPENT  # read and closed by httpx already
        return response

    @contextlib.asynccontextmanager
    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[httpx.Response]:  # type: ignore[override]
        response: httpx.Response | None = None
        try:
            async with super().stream(*args, **kwargs) as response:
                yield response
        finally:
            if response is not None:
                response.stream = _SPENT  # closed by httpx on the way out


_NO_COOKIES = _NoCookies()
_SPENT = httpx.ByteStream(b"")  # what a finished response's stream is (bytes no one reads again)


@functools.lru_cache(maxsize=512)
def upstream_url(url: str) -> httpx.URL:
    """An endpoint's URL parsed once: httpx parses a str URL in Python on every call (~1.5% of the CPU per
    request); a parsed one it takes as it is. Endpoints are a handful per provider (a model in a path)."""
    return httpx.URL(url)


def get_client() -> httpx.AsyncClient:
    """Return the running loop's shared client, creating it on first use. Must be called inside a loop."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = UpstreamClient(
            transport=_transport(),
            limits=LIMITS,
            timeout=DEFAULT_TIMEOUT,
            http2=False,
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
        )
        _clients[loop] = client
    return client


def request_timeout(timeout_s: float) -> httpx.Timeout:
    """Per-call timeout: `timeout_s` for reads, writes and pool waits, a shorter cap on connecting."""
    return httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))


async def aclose_clients() -> None:
    """Close the running loop's client and forget clients whose loops have already closed.

    A client bound to another live loop is left alone: closing it from here would touch that loop's sockets.
    """
    loop = asyncio.get_running_loop()
    for other_loop, client in list(_clients.items()):
        if other_loop is loop:
            del _clients[other_loop]
            await client.aclose()
        elif other_loop.is_closed():
            del _clients[other_loop]
