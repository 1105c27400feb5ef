"""The relay's idle timer: a long wait times out, time between waits does not count, other cancels stay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import pytest

from routing.pipeline.idle import IdleTimer


async def _items(delays: list[float]) -> AsyncGenerator[int, None]:
    for index, delay in enumerate(delays):
        await asyncio.sleep(delay)
        yield index


async def _drain(timer: IdleTimer, items: AsyncIterator[int], pause: float = 0.0) -> list[int]:
    seen = []
    try:
        while True:
            try:
                seen.append(await timer.next(items))
            except StopAsyncIteration:
                return seen
            await asyncio.sleep(pause)  # the consumer's own time: not a wait for the upstream
    finally:
        timer.close()


async def test_a_wait_longer_than_the_limit_raises_timeout_error_in_time() -> None:
    loop = asyncio.get_running_loop()
    timer = IdleTimer(0.2)
    items = _items([0.0, 0.05, 5.0])
    started = loop.time()
    with pytest.raises(TimeoutError):
        await _drain(timer, items)
    assert 0.2 <= loop.time() - started < 0.6
    await items.aclose()


async def test_many_short_waits_pass_however_long_the_stream() -> None:
    timer = IdleTimer(0.2)
    # eight waits of 0.12 s: each under the limit, together almost five times it
    assert await _drain(timer, _items([0.12] * 8)) == list(range(8))


async def test_time_between_waits_does_not_count() -> None:
    timer = IdleTimer(0.2)
    # the consumer takes 0.5 s after each item: the timer fires between waits and must let it be
    assert await _drain(timer, _items([0.0, 0.05, 0.05]), pause=0.5) == [0, 1, 2]


async def test_a_wait_that_starts_after_the_timer_was_armed_gets_its_full_limit() -> None:
    loop = asyncio.get_running_loop()
    timer = IdleTimer(0.3)
    items = _items([0.0, 0.25, 0.25, 5.0])
    started = loop.time()
    with pytest.raises(TimeoutError):
        await _drain(timer, items)
    # 0.5 s of good waits, then the last wait times out 0.3 s after it began (not at the first deadline)
    assert 0.8 <= loop.time() - started < 1.2
    await items.aclose()


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    timer = IdleTimer(0.2)
    items = _items([0.0, 5.0])
    task = asyncio.create_task(_drain(timer, items))
    await asyncio.sleep(0.05)
    task.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await task
    await items.aclose()


async def test_a_cancel_that_arrives_on_top_of_the_timeout_is_not_swallowed(monkeypatch) -> None:
    timer = IdleTimer(0.1)
    items = _items([0.0, 5.0])
    task = asyncio.create_task(_drain(timer, items))
    fire = IdleTimer._check

    def fire_and_client_gone(self: IdleTimer) -> None:
        fire(self)
        task.cancel()  # the client goes away in the same loop turn, before the task runs again

    monkeypatch.setattr(IdleTimer, "_check", fire_and_client_gone)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    await items.aclose()


async def test_close_leaves_no_timer_behind() -> None:
    loop = asyncio.get_running_loop()
    timer = IdleTimer(30)
    assert await _drain(timer, _items([0.0, 0.0])) == [0, 1]
    scheduled = [handle for handle in loop._scheduled if not handle.cancelled()]  # type: ignore[attr-defined]
    assert all(getattr(handle, "_callback", None) != timer._check for handle in scheduled)
