"""Circuits for the router's own dependencies (PostgreSQL, Redis, the Celery broker): one failure, then fail fast.

A dependency that is down or hung would otherwise cost every request its full timeout (the pool's 10 s wait for
PostgreSQL, a 0.5 s socket timeout per Redis command). After a transport failure the circuit opens: callers are
refused at once, and one call every `open_s` is let through as the probe. The probe's success closes it again.
The state is per process and needs no I/O, so a closed circuit costs a comparison per call.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Self

import psycopg

logger = logging.getLogger(__name__)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Circuit:
    """Closed (calls pass), or open since a failure (calls refused, one probe per `open_s`)."""

    def __init__(self, name: str, *, open_s: float) -> None:
        self.name = name
        self.open_s = open_s
        self._open = False
        self._probe_at = 0.0
        self.failed_at = 0.0  # time.monotonic() of the last failure: what was fine before it is suspect
        self._lock = threading.Lock()
        self._watchers: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    @property
    def is_open(self) -> bool:
        return self._open

    def allow(self) -> bool:
        """True when the call may go ahead: the circuit is closed, or this call is the probe that is due."""
        if not self._open:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._probe_at:
                return False
            self._probe_at = now + self.open_s  # this caller probes; the others wait for its outcome
            return True

    def failed(self) -> None:
        with self._lock:
            self.failed_at = time.monotonic()
            opened = not self._open
            self._open = True
            self._probe_at = self.failed_at + self.open_s
        if opened:
            logger.warning("%s unreachable: circuit open, failing fast for %.1f s", self.name, self.open_s)
            for loop, future in list(self._watchers):
                loop.call_soon_threadsafe(_resolve, future)

    def opening(self) -> asyncio.Future[None]:
        """A future of the running loop, done when the circuit next opens (from any thread); cancel it after."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        self._watchers.add(entry)
        future.add_done_callback(lambda _: self._watchers.discard(entry))
        return future

    def succeeded(self) -> None:
        if self._open:
            with self._lock:
                self._open = False
            logger.warning("%s reachable again: circuit closed", self.name)

    def reset(self) -> None:
        """Closed, as at start-up (tests)."""
        with self._lock:
            self._open = False
            self._probe_at = 0.0


# --------------------------------------------------------------------------------------------- PostgreSQL

# One circuit per process for the database. Both pools (Django's and the gateway's async one) make their
# connections through the classes below, so a refused connection opens it within milliseconds, even while
# requests already wait on a pool; requests arriving after that get their 503 at once.
database_circuit = Circuit("PostgreSQL", open_s=1.0)


class DatabaseCircuitOpen(psycopg.OperationalError):
    """Refused without trying: the database failed moments ago (callers treat it as unreachable)."""


class CircuitPgConnection(psycopg.Connection[Any]):
    """Django's pooled connections: a failed connect opens the circuit, a successful one closes it."""

    @classmethod
    def connect(cls, *args: Any, **kwargs: Any) -> Self:
        try:
            conn = super().connect(*args, **kwargs)
        except psycopg.OperationalError as exc:
            if unreachable(exc):
                database_circuit.failed()
            raise
        database_circuit.succeeded()
        return conn


class CircuitPgAsyncConnection(psycopg.AsyncConnection[Any]):
    """The gateway's async pool: the same."""

    @classmethod
    async def connect(cls, *args: Any, **kwargs: Any) -> Self:
        try:
            conn = await super().connect(*args, **kwargs)
        except psycopg.OperationalError as exc:
            if unreachable(exc):
                database_circuit.failed()
            raise
        database_circuit.succeeded()
        return conn


def unreachable(exc: psycopg.OperationalError) -> bool:
    """The server is gone: no answer at all (refused, reset, timed out, closed mid-query: no SQLSTATE) or it is
    shutting down or starting up (57P…). Not a server that answers "too many clients" or "wrong password":
    the connections already open still serve, so nothing should be refused for it."""
    from psycopg_pool import PoolTimeout

    if isinstance(exc, PoolTimeout | DatabaseCircuitOpen):
        return False  # a busy pool, or the circuit's own refusal
    if exc.sqlstate is not None:
        return exc.sqlstate.startswith("57P")
    # A failed connect carries no SQLSTATE; the server's own refusals are its FATAL messages.
    message = str(exc)
    return "FATAL:" not in message or "the database system is" in message  # starting up, shutting down


def trips_database_circuit(exc: BaseException) -> bool:
    """Whether an error from a database call means the database is unreachable (see `unreachable`)."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return isinstance(cause, psycopg.OperationalError) and unreachable(cause)
