"""The hot writes of a request's record, one implementation for PostgreSQL and SQLite alike.

- `pending`: the row, written with the first budget hold in one round trip, before any provider is called
- `outcome`: the row completed (only while still pending, so a replay or a late writer changes nothing
  twice), its attempts (once each), and its holds settled or freed (once each)

The row statements are the ORM's own compiled SQL for whichever database is configured; the budget steps
are budgets' own (one SQL statement each on PostgreSQL, the ORM services elsewhere).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models.constants import OnConflict

from budgets.hotpath import release_statement, settle_statement
from budgets.services import budget_release, budget_settle
from config.api_errors import database_unreachable
from config.db import execute_statements, get_pool, insert_statement, run_orm, run_script
from routing.models import GatewayRequest
from routing.pipeline.journal import JournalEntry, journal_append, journal_replay_sync

logger = logging.getLogger(__name__)
Statement = tuple[str, Any]
_replaying: set[asyncio.Task[Any]] = set()


def pending_statement(row: GatewayRequest) -> Statement:
    # A redelivered batch item keeps its request id: its row from the first delivery stays as it is.
    return insert_statement([row], on_conflict=OnConflict.IGNORE)


def _row_statements(entry: JournalEntry) -> list[Statement]:
    meta = GatewayRequest._meta
    columns = [f for f in meta.local_concrete_fields if not f.primary_key]
    sql, params = insert_statement(
        [entry.row], on_conflict=OnConflict.UPDATE, update_fields=columns, unique_fields=[meta.pk]
    )
    table = connection.ops.quote_name(GatewayRequest._meta.db_table)
    # Completes a pending row (or writes a fresh one); a row already closed stays as it is.
    statements = [(f"{sql} WHERE {table}.{connection.ops.quote_name('status')} = 'pending'", params)]
    if entry.attempts:
        statements.append(insert_statement(entry.attempts, on_conflict=OnConflict.IGNORE))
    return statements


def write_outcome_sync(entry: JournalEntry) -> None:
    """The outcome in one transaction through Django's connection (SQLite, and journal replays anywhere)."""
    with transaction.atomic():
        execute_statements(_row_statements(entry))
        for reservation_id, cost in entry.settle:
            budget_settle(reservation_id=reservation_id, actual_cost=cost)
        for reservation_id in entry.release:
            budget_release(reservation_id=reservation_id)


async def _write_outcome(entry: JournalEntry) -> None:
    pool = await get_pool()
    if pool is None:
        await run_orm(write_outcome_sync, entry)
        return
    statements: list[Statement] = []
    if not settings.ROUTER_LOG_DURABLE_COMMIT:
        statements.append(("SET LOCAL synchronous_commit TO OFF", None))
    statements += _row_statements(entry)
    statements += [settle_statement(reservation_id=rid, actual_cost=cost) for rid, cost in entry.settle]
    statements += [release_statement(reservation_id=rid) for rid in entry.release]
    await run_script(statements)


async def write_outcome(entry: JournalEntry) -> bool:
    """True when the database took it; False when it went to the journal (replayed when it is back)."""
    try:
        await _write_outcome(entry)
    except Exception as exc:
        if not database_unreachable(exc):
            raise
        logger.error("database unavailable: outcome journaled", extra={"request_id": entry.row.id})
        await journal_append(entry)
        _replay_soon()
        return False
    return True


def journal_replay() -> int:
    """Writes every journaled outcome exactly once (the periodic job and tests call it; sync)."""
    return journal_replay_sync(write_outcome_sync)


def _replay_soon() -> None:
    if _replaying:
        return
    task = asyncio.get_running_loop().create_task(_replay_until_empty())
    _replaying.add(task)
    task.add_done_callback(_replaying.discard)


async def _replay_until_empty() -> None:
    """This process retries its journal until the database takes it all."""
    while True:
        await asyncio.sleep(settings.ROUTER_JOURNAL_RETRY_S)
        try:
            written = await run_orm(journal_replay)
        except Exception as exc:
            if not database_unreachable(exc):
                logger.exception("journal replay failed")
            continue
        logger.info("journal replayed", extra={"written": written})
        return
