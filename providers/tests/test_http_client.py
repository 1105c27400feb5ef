"""The shared httpx client: one pooled client per event loop, closed on request, aiohttp beneath it with httpcore's
classification of faults."""

from __future__ import annotations

import asyncio
import gc
import weakref

import httpx
import pytest

from providers import http


async def test_it_returns_the_same_client_within_a_loop() -> None:
    assert http.get_client() is http.get_client()


async def test_httpx_own_transport_pools_connections_without_http2(settings) -> None:
    settings.ROUTER_UPSTREAM_TRANSPORT = "httpx"
    client = http.get_client()

    pool = client._transport._pool  # type: ignore[attr-defined]
    assert pool._max_connections == 1000
    assert pool._max_keepalive_connections == 200
    assert pool._http2 is False
    await http.aclose_clients()


class RawServer:
    """A TCP server answering each request with canned bytes, counting the connections it accepts."""

    def __init__(self, answer: bytes, *, close: bool = False) -> None:
        self.answer, self.close, self.connections = answer, close, 0

    async def __aenter__(self) -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
                await reader.readexactly(length)
                writer.write(self.answer)
                await writer.drain()
                if self.close:
                    writer.close()
                    return

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/x"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()


OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


async def test_the_deployed_transport_is_aiohttp_beneath_httpx_and_keeps_connections_alive() -> None:
    client = http.get_client()
    assert isinstance(client._transport, http.UpstreamTransport)  # type: ignore[attr-defined]
    server = RawServer(OK)
    async with server as url:
        for _ in range(3):
            response = await client.post(url, json={"n": 1})
            assert response.status_code == 200 and response.json() == {}
    assert server.connections == 1  # one pooled keep-alive connection for the three calls
    await http.aclose_clients()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"", httpx.RemoteProtocolError),  # hung up without answering: not a "ConnectTimeout"
        (b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"partial', httpx.RemoteProtocolError),  # cut short
    ],
)
async def test_faults_read_as_httpcore_reads_them(answer, expected) -> None:
    client = http.get_client()
    async with RawServer(answer, close=True) as url:
        with pytest.raises(expected) as caught:
            response = await client.post(url, json={})
            await response.aread()
    assert not isinstance(caught.value, httpx.TimeoutException)
    await http.aclose_clients()


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_an_answer_is_freed_as_soon_as_its_caller_lets_go_of_it(settings, transport) -> None:
    """No reference cycle holds a response (httpx binds its stream to it): refcounting frees it, body and all,
    without waiting for the garbage collector."""
    settings.ROUTER_UPSTREAM_TRANSPORT = transport
    client = http.get_client()
    gc.disable()
    try:
        async with RawServer(OK) as url:
            response = await client.post(url, json={})
            assert response.json() == {} and response.elapsed.total_seconds() >= 0
            gone = weakref.ref(response)
            del response
            assert gone() is None
            async with client.stream("POST", url, json={}) as response:
                assert await response.aread() == b"{}"
            assert response.is_closed
            gone = weakref.ref(response)
            del response
            assert gone() is None
    finally:
        gc.enable()
        await http.aclose_clients()


async def test_a_refused_connection_is_a_connect_error() -> None:
    client = http.get_client()
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(httpx.ConnectError):
        await client.post(f"http://127.0.0.1:{port}/v1/x", json={})
    await http.aclose_clients()


def test_each_event_loop_gets_its_own_client() -> None:
    async def client_of_this_loop() -> httpx.AsyncClient:
        client = http.get_client()
        await http.aclose_clients()
        return client

    first = asyncio.run(client_of_this_loop())
    second = asyncio.run(client_of_this_loop())

    assert first is not second


def test_it_refuses_to_hand_out_a_client_outside_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        http.get_client()


async def test_closing_replaces_the_client_on_next_use() -> None:
    client = http.get_client()

    await http.aclose_clients()

    assert client.is_closed
    assert http.get_client() is not client


async def test_a_client_closed_elsewhere_is_replaced() -> None:
    client = http.get_client()
    await client.aclose()

    assert http.get_client() is not client


def test_request_timeout_caps_connect_at_ten_seconds() -> None:
    timeout = http.request_timeout(45)

    assert (timeout.read, timeout.write, timeout.pool, timeout.connect) == (45, 45, 45, 10)
    assert http.request_timeout(3).connect == 3


class RecordingServer(RawServer):
    """RawServer that keeps the head of every request it is sent."""

    def __init__(self, answer: bytes) -> None:
        super().__init__(answer)
        self.heads: list[bytes] = []

    async def __aenter__(self) -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                self.heads.append(head.lower())
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
                await reader.readexactly(length)
                writer.write(self.answer)
                await writer.drain()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/x?alt=sse"


SETS_A_COOKIE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nset-cookie: __cf_bm=tenant-a; Path=/\r\n"
    b"content-length: 2\r\n\r\n{}"
)


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_a_cookie_one_answer_sets_is_never_sent_on_another_call(settings, transport) -> None:
    """One client serves every caller: what a vendor sets on one caller's answer must not ride on the next."""
    settings.ROUTER_UPSTREAM_TRANSPORT = transport
    await http.aclose_clients()
    client = http.get_client()
    server = RecordingServer(SETS_A_COOKIE)
    async with server as url:
        for _ in range(2):
            response = await client.post(http.upstream_url(url), json={"n": 1})
            assert response.headers["set-cookie"].startswith("__cf_bm=tenant-a")
    assert len(server.heads) == 2
    assert b"/v1/x?alt=sse " in server.heads[1]  # the parsed URL keeps its query
    assert not [head for head in server.heads if b"\r\ncookie:" in head]
    assert len(client.cookies) == 0
    with pytest.raises(AttributeError):
        client.cookies = {"a": "b"}  # type: ignore[misc]  # nothing can put a cookie into the shared client
    await http.aclose_clients()


def test_an_endpoint_url_is_parsed_once() -> None:
    url = "https://api.example.test/v1beta/models/gemini-2.5-flash:generateContent?alt=sse"
    parsed = http.upstream_url(url)
    assert parsed is http.upstream_url(url)
    assert str(parsed) == url and parsed.params["alt"] == "sse"
