"""The one shared, pooled async httpx client for upstream calls, one per event loop: the patch point."""

from __future__ import annotations

import asyncio
import weakref

import httpx

# Sized for a gateway holding many concurrent upstream streams; keep-alive saves a TLS handshake per call.
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30.0)
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
USER_AGENT = "ai-model-router/0.1"

# An httpx pool is bound to the loop that first used it, so each running loop gets its own client. Keys are
# weak so a loop that is garbage collected (tests make one per test) does not keep its client alive.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def get_client() -> httpx.AsyncClient:
    """Return the running loop's shared client, creating it on first use. Must be called inside a loop."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
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
