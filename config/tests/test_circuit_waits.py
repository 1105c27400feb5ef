"""A wait for the database given up (the circuit opened, or the caller cancelled) never strands what it gets."""

from __future__ import annotations

import asyncio

import pytest

from config.circuit import DatabaseCircuitOpen, database_circuit
from config.db import _until_circuit_opens


def test_a_caller_cancelled_while_waiting_hands_back_the_connection_it_would_have_got():
    released: list[str] = []

    async def scenario() -> None:
        got = asyncio.Event()

        async def getconn() -> str:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                await asyncio.sleep(0.01)  # a pool that hands the connection over as the cancel lands
                got.set()
                return "conn-1"
            return "conn-1"

        async def putconn(conn: str) -> None:
            released.append(conn)

        waiter = asyncio.ensure_future(_until_circuit_opens(getconn(), lambda: None, putconn))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await got.wait()
        await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert released == ["conn-1"]


def test_the_circuit_opening_lets_a_waiter_go_at_once():
    database_circuit.reset()

    async def scenario() -> float:
        loop = asyncio.get_running_loop()

        async def stuck() -> str:
            await asyncio.sleep(10)
            return "never"

        started = loop.time()
        loop.call_later(0.05, database_circuit.failed)
        with pytest.raises(DatabaseCircuitOpen):
            await _until_circuit_opens(stuck(), lambda: None)
        return loop.time() - started

    try:
        assert asyncio.run(scenario()) < 1.0
    finally:
        database_circuit.reset()
