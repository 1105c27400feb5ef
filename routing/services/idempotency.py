"""Idempotency-Key records: a key claimed for one request, its first outcome kept 24 hours, released on an error.

Sync ORM functions (the views call them through config.db.run_orm). The unique (api_key, key) constraint is
the claim: whichever request inserts the row runs, every other one finds it. That works the same on
PostgreSQL and SQLite, and across processes, with no lock held while the request runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from routing.models import IdempotencyRecord

TTL = timedelta(hours=24)
MAX_KEY_CHARS = 255
_CLAIM_TRIES = 3


@dataclass(frozen=True, slots=True)
class StoredOutcome:
    status_code: int
    headers: dict[str, str]
    body: bytes
    replayable: bool


@dataclass(frozen=True, slots=True)
class Claim:
    """What claiming a key found: `record_id` when this request won it, else the key's live record."""

    record_id: int | None
    state: str = ""
    fingerprint: str = ""
    outcome: StoredOutcome | None = None

    @property
    def won(self) -> bool:
        return self.record_id is not None


def idempotency_fingerprint(*, method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same request": method, path (with its query) and the body's exact bytes."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed, so no two splits hash alike
        digest.update(part)
    return digest.hexdigest()


def idempotency_claim(
    *, api_key_id: int, key: str, fingerprint: str, request_id: str, now: datetime | None = None
) -> Claim:
    """Inserts the key in progress for this request, or returns the record another request holds.

    A record past its expiry counts as absent: it is deleted and the key claimed anew. A record left
    in progress by a process that died mid-request stays in the way until it expires: retries get 409 for
    up to 24 hours rather than risk charging a second time for a call that may have been made and billed.
    """
    moment = now or timezone.now()
    for _ in range(_CLAIM_TRIES):
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    api_key_id=api_key_id,
                    key=key,
                    fingerprint=fingerprint,
                    request_id=request_id,
                    created_at=moment,
                    expires_at=moment + TTL,
                )
            return Claim(record_id=record.pk)
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(api_key_id=api_key_id, key=key).first()
        if existing is None:
            continue  # released between our insert and this read: try again
        if existing.expires_at <= moment:
            IdempotencyRecord.objects.filter(pk=existing.pk, expires_at__lte=moment).delete()
            continue
        outcome = None
        if existing.state == IdempotencyRecord.State.DONE:
            assert existing.status_code is not None
            outcome = StoredOutcome(
                status_code=existing.status_code,
                headers=dict(existing.headers),
                body=bytes(existing.body),
                replayable=existing.replayable,
            )
        return Claim(record_id=None, state=existing.state, fingerprint=existing.fingerprint, outcome=outcome)
    # Taken and released again under our feet every time: as good as in progress, the client retries.
    return Claim(record_id=None, state=IdempotencyRecord.State.IN_PROGRESS, fingerprint=fingerprint)


def idempotency_complete(
    *, record_id: int, status_code: int, headers: dict[str, str], body: bytes, replayable: bool = True
) -> None:
    """Keeps the first outcome: from now on a retry with the key gets these bytes back."""
    IdempotencyRecord.objects.filter(pk=record_id, state=IdempotencyRecord.State.IN_PROGRESS).update(
        state=IdempotencyRecord.State.DONE,
        status_code=status_code,
        headers=headers,
        body=body if replayable else b"",
        replayable=replayable,
    )


def idempotency_release(*, record_id: int) -> None:
    """Frees the key after an error outcome (nothing was charged), so the client may retry with it."""
    IdempotencyRecord.objects.filter(pk=record_id, state=IdempotencyRecord.State.IN_PROGRESS).delete()


def idempotency_records_purge(*, now: datetime | None = None) -> int:
    """Deletes the records past their 24 hours; returns how many."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
