"""Database access from async code: an async psycopg pool for the hot path's few statements, and a helper
that runs ORM work in a worker thread and hands the connection back to Django's pool afterwards.

The ORM stays the way to read and write everywhere; the gateway's per-request writes (reserve, log and
settle) also have a one-round-trip form on PostgreSQL because a thread hop plus the ORM costs more than
the whole rest of a request.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connection, connections
from psycopg import AsyncClientCursor, AsyncConnection, pq
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from config.cancel_on import CancelOn
from config.circuit import (
    CircuitPgAsyncConnection,
    CircuitPgConnection,
    DatabaseCircuitOpen,
    database_circuit,
    trips_database_circuit,
)
from config.rendering import json_bytes

T = TypeVar("T")
M = TypeVar("M")
IDLE_CHECK_S = 1.0
_returned_at: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = weakref.WeakKeyDictionary()
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[AsyncConnectionPool]] = (
    weakref.WeakKeyDictionary()
)


async def run_orm(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs ORM work in a worker thread (not the request's single sync thread) and releases its connection.

    If the database circuit opens while the thread waits for a connection, the caller gets its error at once;
    the thread, abandoned, does nothing once it has one (the caller was told it failed)."""
    abandoned = threading.Event()

    def call() -> T:
        try:
            if connection.vendor == "postgresql":
                connection.ensure_connection()  # where a pool wait happens
            if abandoned.is_set():
                raise DatabaseCircuitOpen("abandoned while waiting for the database")
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    await database_admit()
    try:
        return await _until_circuit_opens(sync_to_async(call, thread_sensitive=False)(), abandoned.set)
    except Exception as exc:
        if trips_database_circuit(exc):
            database_circuit.failed()
        raise


async def _until_circuit_opens(
    awaitable: Awaitable[T],
    abandon: Callable[[], None],
    release: Callable[[T], Awaitable[None]] | None = None,
) -> T:
    """The awaitable's result, or DatabaseCircuitOpen as soon as the database circuit opens meanwhile (a pool
    whose reconnects are refused would otherwise keep every waiting request for its whole timeout).

    Given up (the circuit opened, or the caller was cancelled), the work is cancelled; what it still obtains
    (a pooled connection) goes back through `release`.

    Awaited in the caller's own task, which the circuit's opening cancels (as asyncio.timeout does): a task
    of its own plus asyncio.wait, twice per request, cost more than the wait they guard almost always is."""
    opening = database_circuit.opening()
    try:
        with CancelOn(opening) as circuit_opened:
            try:
                result = await awaitable
            except asyncio.CancelledError:
                abandon()
                if circuit_opened.ours():
                    raise DatabaseCircuitOpen("The database became unreachable") from None
                raise
    finally:
        opening.cancel()
    if circuit_opened.cancel_pending():  # the work finished as the cancel landed and kept what it got
        abandon()
        if release is not None:
            handing_back = asyncio.ensure_future(release(result))
            _releasing.add(handing_back)
            handing_back.add_done_callback(_releasing.discard)
        if circuit_opened.ours():
            raise DatabaseCircuitOpen("The database became unreachable")
        raise asyncio.CancelledError
    return result


_releasing: set[asyncio.Future[None]] = set()


PROBE_CONNECT_TIMEOUT_S = 2  # libpq's shortest


async def database_admit() -> None:
    """Nothing while the database circuit is closed. While it is open: DatabaseCircuitOpen at once, except for
    the one caller per interval that probes with a fresh short-timeout connection (and closes it on success)."""
    if not database_circuit.is_open:
        return
    if not database_circuit.allow():
        raise DatabaseCircuitOpen("The database failed moments ago")
    try:
        probe = await CircuitPgAsyncConnection.connect(_conninfo(PROBE_CONNECT_TIMEOUT_S))
    except psycopg.OperationalError as exc:
        raise DatabaseCircuitOpen("The database is still unreachable") from exc
    await probe.close()


def database_probe() -> bool:
    """Whether the database answers now, from a fresh connection (never a pool's wait); updates the circuit."""
    if connection.vendor != "postgresql":
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - any failure to reach it means "not ready"
            return False
    try:
        with CircuitPgConnection.connect(_conninfo(PROBE_CONNECT_TIMEOUT_S)) as probe:
            probe.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _conninfo(connect_timeout: int | None = None) -> str:
    db = settings.DATABASES["default"]
    parts = {
        "host": db.get("HOST") or "127.0.0.1",
        "port": str(db.get("PORT") or 5432),
        "dbname": db["NAME"],
        "user": db.get("USER") or "",
        "password": db.get("PASSWORD") or "",
        "connect_timeout": str(connect_timeout or settings.DB_CONNECT_TIMEOUT_S),
    }
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


@functools.cache
def prep_connection() -> Any:
    """The default database's wrapper for compiling SQL and preparing values, never for executing: one per
    process. `connections[alias]` (and the `connection` proxy, on every attribute) finds a thread's own wrapper
    through asgiref's thread-critical local storage: three lookups per request were ~2% of the web CPU."""
    return connections[DEFAULT_DB_ALIAS]


async def get_pool() -> AsyncConnectionPool | None:
    """The running loop's async pool on PostgreSQL; None elsewhere (SQLite in embedded mode)."""
    if prep_connection().vendor != "postgresql":
        return None
    loop = asyncio.get_running_loop()
    opening = _pools.get(loop)
    if opening is None:
        # One task opens the pool; requests arriving meanwhile wait for the same task.
        opening = _pools[loop] = loop.create_task(_open_pool())
    return await asyncio.shield(opening)


async def _check_if_idle(conn: AsyncConnection[Any]) -> None:
    """Tests a connection that sat idle before handing it out: a database restart or a network cut leaves
    idle connections dead, and each would otherwise fail one request after the database is back. A busy
    connection (returned moments ago) skips the round trip, so the hot path pays nothing under load; one
    returned before the database last failed is tested however recent (the cut may have killed it: the
    first answer after an outage then had its outcome journaled instead of written)."""
    returned = _returned_at.get(conn)
    if (
        returned is None
        or time.monotonic() - returned > IDLE_CHECK_S
        or returned <= database_circuit.failed_at
    ):
        await AsyncConnectionPool.check_connection(conn)


async def _put_back(pool: AsyncConnectionPool[Any], conn: AsyncConnection[Any]) -> None:
    """Returns a connection to the pool, noting when (for _check_if_idle). Noted here rather than by a pool
    `reset` callback: with one, psycopg_pool hands every return to a worker task, so each statement paid a
    queue hop and its connection was idle but unavailable until the worker ran."""
    _returned_at[conn] = time.monotonic()
    await pool.putconn(conn)


async def _open_pool() -> AsyncConnectionPool[Any]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        _conninfo(),
        min_size=1,
        max_size=settings.DB_ASYNC_POOL_MAX,
        open=False,
        timeout=settings.DB_POOL_TIMEOUT_S,
        reconnect_timeout=settings.DB_RECONNECT_TIMEOUT_S,
        name="gateway-async",
        connection_class=CircuitPgAsyncConnection,
        check=_check_if_idle,
        # Autocommit: run_script sends its statements as one implicit transaction (see there). No prepared
        # statements: a script's values are inlined, so each is new text that psycopg would hash and count
        # towards preparing it (~1.5% of the web CPU per request) and never prepare.
        kwargs={"autocommit": True, "prepare_threshold": None},
    )
    await pool.open()
    return pool


async def close_pools() -> None:
    opening = _pools.pop(asyncio.get_running_loop(), None)
    if opening is not None:
        await (await opening).close()


def fast_json(value: Any) -> Any:
    """A prepared value, its JSONB (if it is one) encoded by orjson rather than the ORM's json.dumps: the same
    JSON to PostgreSQL at a tenth of the CPU (a 64 KiB prompt's messages are one such value per request)."""
    if type(value) is Jsonb and value.dumps in (None, json.dumps):
        return Jsonb(value.obj, dumps=json_bytes)
    return value


# The SQL of one-row INSERTs, compiled once per model, conflict clause and database: compiling it anew cost
# about 0.3 ms of CPU per statement on the hot path, twice per request.
_ONE_ROW_SQL: dict[tuple[Any, ...], str] = {}


def _conflict_key(on_conflict: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        (name, tuple(getattr(v, "name", v) for v in value) if isinstance(value, list | tuple) else value)
        for name, value in sorted(on_conflict.items())
    )


@functools.cache
def _insert_fields(model: type) -> list[Any]:
    return [
        f
        for f in model._meta.local_concrete_fields  # type: ignore[attr-defined]
        if not (f.primary_key and getattr(f, "db_returning", False))
    ]


@functools.cache
def _positional_fields(model: type) -> tuple[tuple[str, Any], ...]:
    return tuple((f.attname, f) for f in model._meta.concrete_fields)  # type: ignore[attr-defined]


def unsaved(model_class: type[M], /, **values: Any) -> M:
    """An unsaved instance from field attnames, built positionally as Model.from_db builds one: the same
    instance as model_class(**values) (a field not given takes its default), without the keyword path of
    Model.__init__ (~2.7% of the gateway's CPU per request, for its two log rows and their attempts)."""
    args = [
        values.pop(name) if name in values else field.get_default()
        for name, field in _positional_fields(model_class)  # type: ignore[arg-type]  # a class is hashable
    ]
    if values:
        raise TypeError(f"{model_class.__name__} has no fields {sorted(values)}")
    return model_class(*args)


def insert_statement(objs: list[Any], **on_conflict: Any) -> tuple[str, tuple[Any, ...]]:
    """The ORM's own INSERT for unsaved model instances (one statement for all of them), so raw execution
    on the async pool always matches the model's columns and value adaptation. `on_conflict` takes
    InsertQuery's on_conflict, update_fields and unique_fields, compiled for the configured database."""
    from django.db.models.sql import InsertQuery

    model = type(objs[0])
    fields = _insert_fields(model)  # type: ignore[arg-type]  # a model class is hashable
    for obj in objs:
        for field in fields:
            if getattr(obj, field.attname) is None and field.has_default():
                setattr(obj, field.attname, field.get_default())
    db = prep_connection()
    key = (model, db.vendor, _conflict_key(on_conflict))
    if len(objs) == 1 and key in _ONE_ROW_SQL:
        # The compiler's own value preparation for a one-row VALUES list (SQLInsertCompiler.prepare_value).
        obj = objs[0]
        return _ONE_ROW_SQL[key], tuple(
            fast_json(f.get_db_prep_save(f.pre_save(obj, True), db)) for f in fields
        )
    query = InsertQuery(model, **on_conflict)
    query.insert_values(fields, objs)
    sql, params = query.get_compiler(connection=db).as_sql()[0]
    if len(objs) == 1:
        _ONE_ROW_SQL[key] = sql
    return sql, tuple(fast_json(p) for p in params)


async def run_script(
    statements: list[tuple[str, Any]], *, rows_of: int | None = None
) -> list[tuple[Any, ...]] | None:
    """Runs the statements in one round trip as one implicit transaction (PostgreSQL's simple query
    protocol: all of them commit together, or none does) and returns the rows of the last statement that
    returned any, or of statement number `rows_of`. Values are bound client-side by psycopg, which quotes and
    casts them itself.

    Much cheaper than a pipeline or a transaction block of separate executes: one message each way."""
    pool = await get_pool()
    assert pool is not None, "run_script needs PostgreSQL"
    await database_admit()
    try:
        conn = await _until_circuit_opens(pool.getconn(), lambda: None, functools.partial(_put_back, pool))
        try:
            cursor = AsyncClientCursor(conn)
            await cursor.execute(";\n".join(cursor.mogrify(sql, params) for sql, params in statements))
            rows = None
            index = 0
            while True:
                if _has_rows(cursor) and rows_of in (None, index):
                    rows = await cursor.fetchall()
                if not cursor.nextset():
                    return rows
                index += 1
        finally:
            await _put_back(pool, conn)
    except Exception as exc:
        if trips_database_circuit(exc):
            database_circuit.failed()
        raise


def _has_rows(cursor: AsyncClientCursor[Any]) -> bool:
    """Whether the current result set returned rows (empty or not): `cursor.description is not None`, without
    the Column object that `description` builds for each column every time it is read (2.8 -> 0.1 us a result set)."""
    result = cursor.pgresult
    return result is not None and result.status == pq.ExecStatus.TUPLES_OK


def execute_statements(statements: list[tuple[str, Any]]) -> None:
    """The same statements through Django's connection, in one transaction (SQLite, and sync callers)."""
    from django.db import transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
