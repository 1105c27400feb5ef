"""The Idempotency-Key mechanics in process: the wrapper's stream copy, its cap, crashes and clients that leave,
and the claim services on SQLite (`make run`'s embedded default) as well as PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import traceback
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory
from django.utils import timezone

from accounts.services import api_key_issue, user_get_or_create
from config.api_errors import ApiError
from config.db import run_orm
from routing.api import idempotency
from routing.api.idempotency import idempotent
from routing.models import IdempotencyRecord
from routing.pipeline.record import drain_background_logs
from routing.services.idempotency import (
    Claim,
    idempotency_claim,
    idempotency_complete,
    idempotency_fingerprint,
    idempotency_records_purge,
    idempotency_release,
)
from routing.tests.sqlite_support import EmbeddedSite

PIECES = [b"data: one\n\n", b"data: two\n\n", b"data: [DONE]\n\n"]


@pytest.fixture
def key_id(alice) -> int:
    return api_key_issue(user=alice, name="mechanics")[0].pk


def _request(key: str = "k-1", body: bytes = b'{"model": "m"}'):
    request = RequestFactory().post(
        "/v1/chat/completions", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
    )
    request.request_id = "req_" + secrets.token_hex(12)
    return request


async def _events(pieces: list[bytes], *, hang: bool = False) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece
    if hang:
        await asyncio.sleep(60)  # a stream still going when its client leaves


def _streaming(pieces: list[bytes], **kwargs: Any) -> StreamingHttpResponse:
    return StreamingHttpResponse(_events(pieces, **kwargs), content_type="text/event-stream")


async def _the_record() -> IdempotencyRecord:
    # Through run_orm, which hands its connection back: the async ORM's thread would keep the database open.
    return await run_orm(IdempotencyRecord.objects.get)


async def _read(response) -> bytes:
    return b"".join([piece async for piece in response.streaming_content])


def test_the_fingerprint_is_method_path_and_exact_body():
    base = idempotency_fingerprint(method="POST", path="/v1/chat/completions", body=b"{}")
    assert base == idempotency_fingerprint(method="post", path="/v1/chat/completions", body=b"{}")
    assert base != idempotency_fingerprint(method="POST", path="/v1/messages", body=b"{}")
    assert base != idempotency_fingerprint(method="POST", path="/v1/chat/completions", body=b"{ }")
    assert len(base) == 64


@pytest.mark.django_db(transaction=True)
async def test_a_stream_over_the_cap_is_done_but_a_retry_gets_409(key_id, monkeypatch):
    monkeypatch.setattr(idempotency, "MAX_STORED_BYTES", 15)

    async def respond():
        return _streaming(PIECES)

    first = await idempotent(_request(), api_key_id=key_id, respond=respond)
    assert await _read(first) == b"".join(PIECES)  # the client gets it all; only the copy is capped
    record = await _the_record()
    assert record.state == "done" and record.replayable is False and bytes(record.body) == b""
    with pytest.raises(ApiError) as refused:
        await idempotent(_request(), api_key_id=key_id, respond=respond)
    assert refused.value.status == 409 and refused.value.code == "idempotency_replay_unavailable"


@pytest.mark.django_db(transaction=True)
async def test_a_client_that_leaves_mid_stream_leaves_what_was_produced(key_id):
    async def respond():
        return _streaming(PIECES[:2], hang=True)

    response = await idempotent(_request(), api_key_id=key_id, respond=respond)
    received: list[bytes] = []

    async def client() -> None:
        async for piece in response.streaming_content:
            received.append(piece)

    reading = asyncio.ensure_future(client())
    while len(received) < 2:
        await asyncio.sleep(0.01)
    reading.cancel()  # what Django's ASGI handler does when the client disconnects
    with pytest.raises(asyncio.CancelledError):
        await reading
    await drain_background_logs()
    record = await _the_record()
    assert record.state == "done" and bytes(record.body) == b"".join(PIECES[:2])
    replay = await idempotent(_request(), api_key_id=key_id, respond=respond)
    assert replay.content == b"".join(PIECES[:2]) and replay["Idempotent-Replayed"] == "true"
    assert replay["Content-Type"] == "text/event-stream"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("streamed", [False, True])
async def test_a_client_that_leaves_before_the_answer_finds_it_kept(key_id, streamed):
    async def respond():
        await asyncio.sleep(0.3)  # the provider is still answering when the client goes
        late = HttpResponse(b'{"late": true}', content_type="application/json")
        return _streaming(PIECES) if streamed else late

    first = asyncio.ensure_future(idempotent(_request(), api_key_id=key_id, respond=respond))
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await drain_background_logs()
    expected = b"".join(PIECES) if streamed else b'{"late": true}'
    replay = await idempotent(_request(), api_key_id=key_id, respond=respond)
    assert replay["Idempotent-Replayed"] == "true" and replay.content == expected


@pytest.mark.django_db(transaction=True)
async def test_a_client_that_leaves_while_the_key_is_claimed_leaves_it_free(key_id, monkeypatch):
    def slow_claim(**kwargs: Any) -> Claim:
        time.sleep(0.3)  # the insert is still on its way when the client goes
        return idempotency_claim(**kwargs)

    monkeypatch.setattr(idempotency, "idempotency_claim", slow_claim)
    ran: list[bool] = []

    async def respond():
        ran.append(True)
        return HttpResponse(b"ok")

    first = asyncio.ensure_future(idempotent(_request(), api_key_id=key_id, respond=respond))
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await drain_background_logs()
    assert ran == [] and not await run_orm(IdempotencyRecord.objects.exists)


@pytest.mark.django_db(transaction=True)
async def test_a_view_that_crashes_releases_the_key(key_id):
    async def crash():
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError):
        await idempotent(_request(), api_key_id=key_id, respond=crash)
    assert not await run_orm(IdempotencyRecord.objects.exists)

    async def answer():
        return HttpResponse(b"ok", content_type="text/plain")

    retried = await idempotent(_request(), api_key_id=key_id, respond=answer)
    assert retried.content == b"ok" and not retried.has_header("Idempotent-Replayed")


# -------------------------------------------------------------------------------- the services, both databases


def claims_replays_and_releases(api_key_id: int) -> dict[str, Any]:
    """The claim lifecycle on whichever database runs it; a summary the test compares."""
    now = timezone.now()
    later = now + timedelta(hours=24, seconds=1)

    def claim(key: str, fingerprint: str, at: datetime = now) -> Claim:
        request_id = "req_" + secrets.token_hex(4)
        return idempotency_claim(
            api_key_id=api_key_id, key=key, fingerprint=fingerprint, request_id=request_id, now=at
        )

    first = claim("a", "f1")
    busy = claim("a", "f1")
    assert first.record_id is not None
    idempotency_complete(
        record_id=first.record_id, status_code=201, headers={"Content-Type": "x/y"}, body=b"\x00first"
    )
    done, other = claim("a", "f1"), claim("a", "f2")
    released = claim("b", "f1")
    assert released.record_id is not None and done.outcome is not None
    idempotency_release(record_id=released.record_id)
    return {
        "first": first.won,
        "busy": [busy.won, busy.state, busy.outcome is None],
        "done": [done.state, done.outcome.status_code, done.outcome.headers, done.outcome.body.hex()],
        "other_fingerprint": other.fingerprint,
        "after_release": claim("b", "f1").won,
        "after_expiry": claim("a", "f2", later).won,
        "purged_a_day_later": idempotency_records_purge(now=later + timedelta(hours=24)),
    }


EXPECTED = {
    "first": True,
    "busy": [False, "in_progress", True],
    "done": ["done", 201, {"Content-Type": "x/y"}, b"\x00first".hex()],
    "other_fingerprint": "f1",
    "after_release": True,
    "after_expiry": True,
    "purged_a_day_later": 2,
}


def run_on_this_database() -> dict[str, Any]:
    """The subprocess's entry point: the scenario for a user and key of its own."""
    try:
        user = user_get_or_create(username="sqlite-idempotency")
        api_key, _ = api_key_issue(user=user, name="sqlite")
        return {"engine": connection.vendor, "result": claims_replays_and_releases(api_key.pk)}
    except Exception:  # noqa: BLE001 (reported to the test, which fails on it)
        return {"engine": connection.vendor, "error": traceback.format_exc()}


RUNNER = (
    "import django, json; django.setup(); "
    "from routing.tests.test_idempotency_services import run_on_this_database; "
    "print(json.dumps(run_on_this_database()))"
)


def test_the_claim_lifecycle_on_postgresql(db, alice):
    api_key, _ = api_key_issue(user=alice, name="pg")
    assert connection.vendor == "postgresql"
    assert claims_replays_and_releases(api_key.pk) == EXPECTED


def test_the_claim_lifecycle_on_sqlite(tmp_path):
    site = EmbeddedSite(tmp_path / "idempotency-sqlite").migrate()
    outcome = json.loads(site.run("-c", RUNNER).strip().splitlines()[-1])
    assert outcome["engine"] == "sqlite"
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"] == EXPECTED
