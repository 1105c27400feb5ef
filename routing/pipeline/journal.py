"""The outage journal: a call's outcome the database could not take, kept on local disk until it can.

One JSON line per outcome, appended and fsync'd before the client gets its answer. A replay claims a file
by renaming it, writes each outcome through the same idempotent write as the live path (the row only while
it is still pending, attempts once, reservations settled once), and deletes the file when all of it is in.
A line cut short by a crash mid-append is skipped; the lines around it are replayed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import models

from routing.models import Attempt, GatewayRequest

logger = logging.getLogger(__name__)
CLAIMED = ".replaying"


@dataclass
class JournalEntry:
    """One outcome: the row, its attempts, which holds to settle (at what) and which to free."""

    row: GatewayRequest
    attempts: list[Attempt]
    settle: list[tuple[int, Decimal]]
    release: list[int]
    # The live write only: its pending row went in with the first hold, so the outcome's own columns are
    # enough (writes.completion_statement). Not journaled: a replay writes the whole row, which is always right.
    pending: bool = False


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _fields(obj: models.Model) -> dict[str, Any]:
    return {f.attname: _plain(getattr(obj, f.attname)) for f in obj._meta.local_concrete_fields}


def _build(model: type[models.Model], values: dict[str, Any]) -> Any:
    known = {f.attname: f for f in model._meta.local_concrete_fields}
    return model(**{name: known[name].to_python(value) for name, value in values.items() if name in known})


def encode(entry: JournalEntry) -> bytes:
    record = {
        "v": 1,
        "row": _fields(entry.row),
        "attempts": [_fields(a) for a in entry.attempts],
        "settle": [[rid, str(cost)] for rid, cost in entry.settle],
        "release": entry.release,
    }
    return orjson.dumps(record) + b"\n"


def decode(line: bytes) -> JournalEntry | None:
    """None for a torn or foreign line (a crash mid-append leaves one at the end of a file)."""
    try:
        record = orjson.loads(line)
        return JournalEntry(
            row=_build(GatewayRequest, record["row"]),
            attempts=[_build(Attempt, a) for a in record["attempts"]],
            settle=[(int(rid), Decimal(cost)) for rid, cost in record["settle"]],
            release=[int(rid) for rid in record["release"]],
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, ArithmeticError):
        return None


def _directory() -> Path:
    directory = Path(settings.ROUTER_JOURNAL_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _own_file() -> Path:
    return _directory() / f"outcomes-{socket.gethostname()}-{os.getpid()}.jsonl"


def _append(data: bytes) -> None:
    # Opened per append: a replay may have renamed the file away since the last one.
    fd = os.open(_own_file(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


async def journal_append(entry: JournalEntry) -> None:
    """Durable before it returns (the disk, not the page cache); off the event loop."""
    await asyncio.to_thread(_append, encode(entry))


def _claim() -> list[Path]:
    """This replay's files: every journal file renamed to a claimed name, plus claims a dead replay left."""
    claimed: list[Path] = []
    for path in sorted(_directory().glob("outcomes-*")):
        if CLAIMED in path.name:
            claimed.append(path)
            continue
        target = path.with_name(f"{path.name}{CLAIMED}-{uuid.uuid4().hex[:8]}")
        try:
            path.rename(target)
        except FileNotFoundError:
            continue  # another replay claimed it first
        claimed.append(target)
    return claimed


def journal_entries(path: Path) -> tuple[list[JournalEntry], int]:
    """The file's whole entries, and how many lines were torn."""
    entries: list[JournalEntry] = []
    torn = 0
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        entry = decode(line)
        if entry is None:
            torn += 1
        else:
            entries.append(entry)
    return entries, torn


def journal_pending() -> int:
    """How many journal files wait for the database (for /ready-style checks and tests)."""
    directory = Path(settings.ROUTER_JOURNAL_DIR)
    return len(list(directory.glob("outcomes-*"))) if directory.exists() else 0


def journal_replay_sync(write: Any) -> int:
    """Writes every journaled outcome with `write(entry)` (idempotent); returns how many entries it wrote.

    A file that fails midway keeps its claimed name and is tried again whole by the next replay, which is
    safe because every write is idempotent.
    """
    written = 0
    for path in _claim():
        entries, torn = journal_entries(path)
        if torn:
            logger.warning(
                "journal line(s) torn by a crash were skipped", extra={"file": path.name, "torn": torn}
            )
        for entry in entries:
            write(entry)
            written += 1
        path.unlink(missing_ok=True)
    return written
