"""Leases: the holds of calls in flight are renewed by the process that owns them, so only a dead process's
holds expire. A stream that outlives the reservation TTL keeps its hold and cannot be charged on top of
budget that the expiry job freed under it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.conf import settings

from budgets.hotpath import abudget_renew
from config.api_errors import database_unreachable

logger = logging.getLogger(__name__)
_held: set[int] = set()
_renewer: set[asyncio.Task[Any]] = set()


def lease_take(reservation_id: int) -> None:
    _held.add(reservation_id)
    loop = asyncio.get_running_loop()
    if not any(task.get_loop() is loop and not task.done() for task in _renewer):
        # One renewer per event loop (a loop that closed took its task with it).
        _renewer.intersection_update({t for t in _renewer if not t.get_loop().is_closed()})
        task = loop.create_task(_renew_while_held())
        _renewer.add(task)
        task.add_done_callback(_renewer.discard)


def lease_drop(reservation_ids: list[int]) -> None:
    _held.difference_update(reservation_ids)


def leases_held() -> set[int]:
    return set(_held)


async def _renew_while_held() -> None:
    while _held:
        await asyncio.sleep(settings.ROUTER_LEASE_RENEW_S)
        held = list(_held)
        if not held:
            return
        try:
            await abudget_renew(reservation_ids=held, ttl_s=settings.ROUTER_RESERVATION_TTL_S)
        except Exception as exc:
            if not database_unreachable(exc):
                logger.exception("renewing holds failed")
