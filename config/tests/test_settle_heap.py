"""The ASGI lifespan's start-up moves what start-up made out of the garbage collector's way (config.asgi)."""

from __future__ import annotations

import asyncio
import gc
import sys

from django.test import override_settings

from config.asgi import application


def _start_and_stop() -> list[dict[str, str]]:
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, str]] = []

    async def receive() -> dict[str, str]:
        return messages.pop(0)

    async def send(message: dict[str, str]) -> None:
        sent.append(message)

    asyncio.run(application({"type": "lifespan"}, receive, send))
    return sent


def test_startup_imports_the_views_and_freezes_the_heap() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        sent = _start_and_stop()
        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert gc.get_freeze_count() > 10_000  # Django, the URLconf and every view module
        assert "routing.api.completions" in sys.modules  # imported at start, not on the first request
    finally:
        gc.unfreeze()


def test_startup_sets_the_first_generations_threshold() -> None:
    saved = gc.get_threshold()
    try:
        with override_settings(ROUTER_GC_GEN0_THRESHOLD=12_345):
            _start_and_stop()
        assert gc.get_threshold() == (12_345, *saved[1:])  # the older generations keep theirs
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()
