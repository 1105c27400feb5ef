"""Replies from Redis are parsed by hiredis (requirements/base.txt), the C parser redis-py takes when it is
installed: pure-Python parsing and packing were ~3% of the instructions of a gateway request."""

from __future__ import annotations

import asyncio

from redis._parsers import _AsyncHiredisParser, _HiredisParser

from config.redis_clients import get_redis, get_sync_redis


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
