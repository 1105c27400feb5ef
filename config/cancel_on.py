"""Cancelling the running task when a future completes, and telling that cancel apart from anyone else's.

The gateway's two waits that must end early use it: the lean ASGI handler (the client's leaving ends the view)
and config.db's waits for the database (the circuit's opening ends them). Both run their work in the caller's
own task, as asyncio.timeout does, instead of a task of their own plus asyncio.wait.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any


class CancelOn:
    """Inside the block, `future` completing (not cancelled) cancels the running task. A callback that runs
    after the block (scheduled just as the work finished) cancels nothing."""

    def __init__(self, future: asyncio.Future[Any]) -> None:
        task = asyncio.current_task()
        assert task is not None, "needs a running task"
        self._task = task
        self._cancelling = task.cancelling()
        self._future = future
        self._active = False
        self.fired = False

    def __enter__(self) -> CancelOn:
        self._active = True
        self._future.add_done_callback(self._fire)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._active = False

    def _fire(self, future: asyncio.Future[Any]) -> None:
        if self._active and not future.cancelled():
            self.fired = True
            self._task.cancel()

    def cancel_pending(self) -> bool:
        """Whether the task was asked to cancel since the block began (by the future or anyone else)."""
        return self._task.cancelling() > self._cancelling

    def ours(self) -> bool:
        """True when the task's cancel came from the future alone; that cancel is then undone (uncancel)."""
        return self.fired and self._task.uncancel() <= self._cancelling
