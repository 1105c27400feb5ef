"""A wait for the database given up (the circuit opened, or the caller cancelled) never strands what it gets."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

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


def test_a_circuit_that_opens_as_the_work_finishes_cancels_nothing_after_it():
    database_circuit.reset()

    async def scenario() -> str:
        async def quick() -> str:
            database_circuit.failed()  # its watchers are told on the loop's next turn, after this returns
            return "conn-1"

        got = await _until_circuit_opens(quick(), lambda: None)
        await asyncio.sleep(0.05)  # the caller's own next wait: not cut short by the watcher left behind
        return got

    try:
        assert asyncio.run(scenario()) == "conn-1"
    finally:
        database_circuit.reset()


def test_a_caller_cancelled_while_waiting_is_cancelled_not_told_the_database_is_down():
    database_circuit.reset()
    abandoned: list[bool] = []

    async def scenario() -> None:
        waiter = asyncio.ensure_future(
            _until_circuit_opens(asyncio.sleep(10), lambda: abandoned.append(True))
        )
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert waiter.cancelled()

    asyncio.run(scenario())
    assert abandoned == [True]


def test_a_worker_thread_that_cannot_stop_does_not_keep_its_caller_once_the_circuit_opens():
    """run_orm's work is a thread, which a cancel cannot stop: the caller still goes at once, abandoning it."""
    database_circuit.reset()
    abandoned: list[bool] = []

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        loop.call_later(0.05, database_circuit.failed)
        with pytest.raises(DatabaseCircuitOpen):
            await _until_circuit_opens(
                sync_to_async(time.sleep, thread_sensitive=False)(1.5), lambda: abandoned.append(True)
            )
        return loop.time() - started

    try:
        assert asyncio.run(scenario()) < 1.0
        assert abandoned == [True]
    finally:
        database_circuit.reset()
