"""Replies from Redis are parsed by hiredis (requirements/base.txt), the C parser redis-py takes when it is
installed (pure-Python parsing was ~3% of the instructions of a gateway request), and the async connections
pack their commands with it, as redis-py's sync ones do."""

from __future__ import annotations

import asyncio

import hiredis
import pytest
import redis.asyncio as aioredis
from redis._parsers import _AsyncHiredisParser, _HiredisParser
from redis.exceptions import DataError

from config.redis_clients import CircuitConnection, get_redis, get_sync_redis


def test_the_async_client_parses_with_hiredis():
    async def check() -> tuple[type, list[object]]:
        client = get_redis()
        assert client is not None
        connection = await client.connection_pool.get_connection()
        try:
            parser = type(connection._parser)
        finally:
            await client.connection_pool.release(connection)
        await client.set("parser-check", b"a\r\nb\x00")
        script = "return {1, 'two', {ARGV[1]}, redis.call('GET', KEYS[1])}"
        reply = await client.eval(script, 1, "parser-check", "three")
        await client.aclose()
        return parser, reply

    parser, reply = asyncio.run(check())
    assert parser is _AsyncHiredisParser
    assert reply == [1, b"two", [b"three"], b"a\r\nb\x00"]


def test_the_sync_client_parses_with_hiredis():
    client = get_sync_redis()
    assert client is not None
    connection = client.connection_pool.get_connection()
    try:
        assert type(connection._parser) is _HiredisParser
        connection.send_command("ECHO", b"x\r\ny")
        assert connection.read_response() == b"x\r\ny"
    finally:
        client.connection_pool.release(connection)


PACKED = [
    ("SET", "k", b"v\r\n\x00"),
    ("EVALSHA", "abc", 2, "k1", "k2", 1.5, 1733600000.123456, -3, 1e-05, 2**70, "ünï"),
    ("CONFIG GET", "maxmemory"),
    (b"ZADD", "z", 1765000000.9876543, memoryview(b"m")),
]


@pytest.mark.parametrize("args", PACKED)
def test_the_async_connection_packs_commands_with_hiredis_as_redis_py_would(args, monkeypatch):
    calls: list[object] = []
    pack = hiredis.pack_command
    monkeypatch.setattr(hiredis, "pack_command", lambda command: calls.append(command) or pack(command))
    connection = CircuitConnection()
    ours = b"".join(connection.pack_command(*args))
    assert calls, "packed by hiredis"
    assert ours == b"".join(aioredis.Connection().pack_command(*args))


def test_a_value_redis_cannot_take_is_refused_as_redis_py_refuses_it():
    with pytest.raises(DataError):
        CircuitConnection().pack_command("SET", "k", None)
