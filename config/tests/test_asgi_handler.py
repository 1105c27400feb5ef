"""The lean ASGI handler copies Django's private ASGIHandler.handle without the request signals: a Django
upgrade that changes the original must fail here, and the signals it skips must really be skipped."""

from __future__ import annotations

import asyncio
import hashlib
import inspect

import django
import httpx
import pytest
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished, request_started

from config import asgi


def test_the_copied_handle_matches_djangos_own():
    release, digest = asgi.COPIED_FROM
    source = inspect.getsource(ASGIHandler.handle)
    assert django.get_version().startswith(release + ".")
    assert hashlib.sha256(source.encode()).hexdigest() == digest, (
        "Django's ASGIHandler.handle changed: review GatewayASGIHandler.handle (config/asgi.py) against it, "
        "then update COPIED_FROM"
    )


def _signals_for(path: str) -> list[str]:
    sent: list[str] = []

    def started(**kwargs: object) -> None:
        sent.append("started")

    def finished(**kwargs: object) -> None:
        sent.append("finished")

    request_started.connect(started)
    request_finished.connect(finished)
    try:

        async def call() -> int:
            transport = httpx.ASGITransport(app=asgi.application)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return (await client.post(path, json={})).status_code

        status = asyncio.run(call())
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert status == 401  # no key: answered by the door itself
    return sent


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path", ["/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/chat/compare"]
)
def test_the_doors_skip_the_request_signals(path, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    assert _signals_for(path) == []


@pytest.mark.django_db(transaction=True)
def test_the_rest_of_v1_keeps_them(settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    assert _signals_for("/v1/budget/reset") == ["started", "finished"]
