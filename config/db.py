"""Database access from async code: an async psycopg pool for the hot path's few statements, and a helper
that runs ORM work in a worker thread and hands the connection back to Django's pool afterwards.

The ORM stays the way to read and write everywhere; the gateway's per-request writes (reserve, log and
settle) also have a one-round-trip form on PostgreSQL because a thread hop plus the ORM costs more than
the whole rest of a request.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection
from psycopg import AsyncClientCursor, AsyncConnection
from psycopg_pool import AsyncConnectionPool

T = TypeVar("T")
IDLE_CHECK_S = 1.0
_returned_at: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = weakref.WeakKeyDictionary()
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[AsyncConnectionPool]] = (
    weakref.WeakKeyDictionary()
)


async def run_orm(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs ORM work in a worker thread (not the request's single sync thread) and releases its connection."""

    def call() -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return await sync_to_async(call, thread_sensitive=False)()


def _conninfo() -> str:
    db = settings.DATABASES["default"]
    parts = {
        "host": db.get("HOST") or "127.0.0.1",
        "port": str(db.get("PORT") or 5432),
        "dbname": db["NAME"],
        "user": db.get("USER") or "",
        "password": db.get("PASSWORD") or "",
        "connect_timeout": str(settings.DB_CONNECT_TIMEOUT_S),
    }
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


async def get_pool() -> AsyncConnectionPool | None:
    """The running loop's async pool on PostgreSQL; None elsewhere (SQLite in embedded mode)."""
    if connection.vendor != "postgresql":
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
    connection (returned moments ago) skips the round trip, so the hot path pays nothing under load."""
    returned = _returned_at.get(conn)
    if returned is None or time.monotonic() - returned > IDLE_CHECK_S:
        await AsyncConnectionPool.check_connection(conn)


async def _mark_returned(conn: AsyncConnection[Any]) -> None:
    _returned_at[conn] = time.monotonic()


async def _open_pool() -> AsyncConnectionPool:
    pool = AsyncConnectionPool(
        _conninfo(),
        min_size=1,
        max_size=settings.DB_ASYNC_POOL_MAX,
        open=False,
        timeout=settings.DB_POOL_TIMEOUT_S,
        reconnect_timeout=settings.DB_RECONNECT_TIMEOUT_S,
        name="gateway-async",
        check=_check_if_idle,
        # Autocommit: run_script sends its statements as one implicit transaction (see there).
        kwargs={"autocommit": True},
        reset=_mark_returned,
    )
    await pool.open()
    return pool


async def close_pools() -> None:
    opening = _pools.pop(asyncio.get_running_loop(), None)
    if opening is not None:
        await (await opening).close()


# The SQL of one-row INSERTs, compiled once per model, conflict clause and database: compiling it anew cost
# about 0.3 ms of CPU per statement on the hot path, twice per request.
_ONE_ROW_SQL: dict[tuple[Any, ...], str] = {}


def _conflict_key(on_conflict: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        (name, tuple(getattr(v, "name", v) for v in value) if isinstance(value, list | tuple) else value)
        for name, value in sorted(on_conflict.items())
    )


def insert_statement(objs: list[Any], **on_conflict: Any) -> tuple[str, tuple[Any, ...]]:
    """The ORM's own INSERT for unsaved model instances (one statement for all of them), so raw execution
    on the async pool always matches the model's columns and value adaptation. `on_conflict` takes
    InsertQuery's on_conflict, update_fields and unique_fields, compiled for the configured database."""
    from django.db.models.sql import InsertQuery

    model = type(objs[0])
    fields = [
        f
        for f in model._meta.local_concrete_fields
        if not (f.primary_key and getattr(f, "db_returning", False))
    ]
    for obj in objs:
        for field in fields:
            if getattr(obj, field.attname) is None and field.has_default():
                setattr(obj, field.attname, field.get_default())
    key = (model, connection.vendor, _conflict_key(on_conflict))
    if len(objs) == 1 and key in _ONE_ROW_SQL:
        # The compiler's own value preparation for a one-row VALUES list (SQLInsertCompiler.prepare_value).
        obj = objs[0]
        return _ONE_ROW_SQL[key], tuple(f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields)
    query = InsertQuery(model, **on_conflict)
    query.insert_values(fields, objs)
    sql, params = query.get_compiler(connection=connection).as_sql()[0]
    if len(objs) == 1:
        _ONE_ROW_SQL[key] = sql
    return sql, tuple(params)


async def run_script(statements: list[tuple[str, Any]]) -> list[tuple[Any, ...]] | None:
    """Runs the statements in one round trip as one implicit transaction (PostgreSQL's simple query
    protocol: all of them commit together, or none does) and returns the rows of the last statement that
    returned any. Values are bound client-side by psycopg, which quotes and casts them itself.

    Much cheaper than a pipeline or a transaction block of separate executes: one message each way."""
    pool = await get_pool()
    assert pool is not None, "run_script needs PostgreSQL"
    async with pool.connection() as conn:
        cursor = AsyncClientCursor(conn)
        await cursor.execute(";\n".join(cursor.mogrify(sql, params) for sql, params in statements))
        rows = None
        while True:
            if cursor.description is not None:
                rows = await cursor.fetchall()
            if not cursor.nextset():
                return rows


def execute_statements(statements: list[tuple[str, Any]]) -> None:
    """The same statements through Django's connection, in one transaction (SQLite, and sync callers)."""
    from django.db import transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
