"""A TCP forwarder for outage tests: put it between a gateway and PostgreSQL or Redis, then cut and restore it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

from providers.fake_upstream import free_port

CHUNK = 64 * 1024
T = TypeVar("T")


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port` from an event loop in a thread of its own.

    `stop()` closes the listener and every open connection (both ends), the way a dependency that dies
    looks from the client: new connections are refused and the old ones break. `start()` listens again on
    the same port, so whoever was pointed at the proxy finds the dependency back.
    """

    def __init__(self, target_host: str, target_port: int, *, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections_made = 0
        self.hung = False

    @property
    def running(self) -> bool:
        return self._server is not None

    def hang(self) -> None:
        """A dependency that hangs rather than refusing: connections are accepted, and what is sent (on new
        and open connections alike) is swallowed without an answer, until `start()` or `stop()`."""
        self.start()
        self.hung = True

    def start(self) -> Self:
        self.hung = False
        if self._server is None:
            self._server = self._call(self._listen())
        return self

    def stop(self) -> None:
        """Refuses new connections and breaks every open one; returns when both are done."""
        self.hung = False
        server, self._server = self._server, None
        if server is not None:
            self._call(self._shut(server))

    def close(self) -> None:
        self.stop()
        self._call(self._drain())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _shut(self, server: asyncio.Server) -> None:
        server.close()
        for writer in list(self._writers):
            with contextlib.suppress(OSError, RuntimeError):
                writer.transport.abort()  # a reset, not a polite FIN: the peer sees the link die
        self._writers.clear()
        await server.wait_closed()

    async def _drain(self) -> None:
        """Lets the connection tasks that `stop()` broke finish before the loop goes away."""
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._server is None:
            client_writer.transport.abort()
            return
        if self.hung:
            self._writers.add(client_writer)
            with contextlib.suppress(OSError, RuntimeError):
                while await client_reader.read(CHUNK):
                    pass  # swallowed: no answer ever comes
            self._writers.discard(client_writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self.connections_made += 1
        self._writers |= {client_writer, upstream_writer}
        try:
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer)
            )
        finally:
            for writer in (client_writer, upstream_writer):
                self._writers.discard(writer)
                writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                if self.hung:
                    continue  # swallowed
                writer.write(data)
                await writer.drain()
        except (OSError, RuntimeError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.transport.abort()


def url_via(url: str, port: int) -> str:
    """The URL with its host and port replaced by a proxy's on 127.0.0.1."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))
