"""The ASGI lifespan's start-up moves what start-up made out of the garbage collector's way (config.asgi)."""

from __future__ import annotations

import asyncio
import gc
import sys

from config.asgi import application


def test_startup_imports_the_views_and_freezes_the_heap() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, str]] = []

    async def receive() -> dict[str, str]:
        return messages.pop(0)

    async def send(message: dict[str, str]) -> None:
        sent.append(message)

    try:
        asyncio.run(application({"type": "lifespan"}, receive, send))
        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert gc.get_freeze_count() > 10_000  # Django, the URLconf and every view module
        assert "routing.api.completions" in sys.modules  # imported at start, not on the first request
    finally:
        gc.unfreeze()
