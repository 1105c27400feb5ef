"""The relay's idle timeout: one timer per stream instead of one per chunk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")

# A timer may fire a hair before its deadline (asyncio runs what is due within the clock's resolution).
_SLACK_S = 0.001


class IdleTimer:
    """Raises `TimeoutError` in a wait for the next item that lasts longer than `seconds`.

    The contract of `asyncio.timeout(seconds)` around each wait, with its cancel-and-convert semantics (a
    cancellation from elsewhere stays a cancellation), but the timer is armed once and, when it fires during
    a wait that began later, moved to that wait's deadline: about one timer per `seconds` of stream instead
    of a timer made and cancelled per chunk. Time between waits (the client reading at its own pace) does not
    count. Call `close()` when the stream ends.
    """

    __slots__ = ("_cancelling", "_expired", "_handle", "_loop", "_seconds", "_since", "_task")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._loop = asyncio.get_running_loop()
        self._since: float | None = None  # when the current wait began; None between waits
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._handle: asyncio.TimerHandle | None = None
        self._expired = False

    async def next(self, iterator: AsyncIterator[T]) -> T:
        """`anext(iterator)`; `TimeoutError` if it takes longer than the limit."""
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._cancelling = task.cancelling()
        self._since = since = self._loop.time()
        if self._handle is None:
            self._handle = self._loop.call_at(since + self._seconds, self._check)
        try:
            return await anext(iterator)
        except asyncio.CancelledError:
            if self._expired and task.uncancel() <= self._cancelling:
                raise TimeoutError from None  # our cancellation, and no other one came on top
            raise
        finally:
            self._since = None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        self._handle = None
        since = self._since
        if since is None or self._expired:
            return  # between waits: the next wait arms the timer again
        deadline = since + self._seconds
        if self._loop.time() + _SLACK_S >= deadline:
            self._expired = True
            assert self._task is not None
            self._task.cancel()
        else:
            self._handle = self._loop.call_at(deadline, self._check)
