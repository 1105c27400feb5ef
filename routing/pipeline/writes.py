"""The hot writes of a request's record, one implementation for PostgreSQL and SQLite alike.

- `pending`: the row, written with the first budget hold in one round trip, before any provider is called
- `outcome`: the row completed (only while still pending, so a replay or a late writer changes nothing
  twice), its attempts (once each), and its holds settled or freed (once each)

The row statements are the ORM's own compiled SQL for whichever database is configured; the budget steps
are budgets' own (one SQL statement each on PostgreSQL, the ORM services elsewhere).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Field
from django.db.models.constants import OnConflict
from psycopg import IntegrityError

from budgets.hotpath import release_statement, settle_statement
from budgets.services import budget_release, budget_settle
from config.api_errors import database_unreachable
from config.db import (
    execute_statements,
    fast_json,
    get_pool,
    insert_statement,
    prep_connection,
    run_orm,
    run_script,
)
from routing.models import GatewayRequest
from routing.pipeline.journal import JournalEntry, journal_append, journal_replay_sync

logger = logging.getLogger(__name__)
Statement = tuple[str, Any]
_replaying: set[asyncio.Task[Any]] = set()


def pending_statement(row: GatewayRequest) -> Statement:
    # A redelivered batch item keeps its request id: its row from the first delivery stays as it is.
    return insert_statement([row], on_conflict=OnConflict.IGNORE)


# What the pending row already holds and the outcome never changes: the request's own facts and its prompt,
# which for a coding agent's request is most of the row (sent, parsed and TOASTed again for nothing).
WRITTEN_ONCE = frozenset(
    {
        "id",
        "user_id",
        "api_key_id",
        "client_request_id",
        "created_at",
        "requested_model",
        "door",
        "messages",
        "prompt_text",
        "stream",
        "selection_mode",
        "models_considered",
        "candidates",
        "comparison_id",
        "batch_id",
    }
)


def _row_statement(entry: JournalEntry) -> Statement:
    """The whole row: completes a pending row or writes a fresh one; a row already closed stays as it is."""
    meta = GatewayRequest._meta
    columns = [f for f in meta.local_concrete_fields if not f.primary_key]
    sql, params = insert_statement(
        [entry.row], on_conflict=OnConflict.UPDATE, update_fields=columns, unique_fields=[meta.pk]
    )
    table = connection.ops.quote_name(GatewayRequest._meta.db_table)
    return f"{sql} WHERE {table}.{connection.ops.quote_name('status')} = 'pending'", params


@functools.cache
def _completion_sql(vendor: str) -> tuple[str, tuple[Field[Any, Any], ...]]:
    del vendor  # the cache key: quoting is the configured database's
    meta = GatewayRequest._meta
    fields = tuple(f for f in meta.local_concrete_fields if f.attname not in WRITTEN_ONCE)
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in fields)
    where = f"{quote('id')} = %s AND {quote('status')} = 'pending' RETURNING {quote('id')}"
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {where}"  # noqa: S608 (the model's columns)
    return sql, fields


def completion_statement(entry: JournalEntry) -> Statement:
    """The outcome's own columns of a row still pending (it returns the id when it completed one)."""
    db = prep_connection()
    sql, fields = _completion_sql(db.vendor)
    row = entry.row
    values = tuple(fast_json(f.get_db_prep_save(f.pre_save(row, False), db)) for f in fields)
    return sql, (*values, row.pk)


def _attempt_statements(entry: JournalEntry) -> list[Statement]:
    return [insert_statement(entry.attempts, on_conflict=OnConflict.IGNORE)] if entry.attempts else []


def write_outcome_sync(entry: JournalEntry) -> None:
    """The outcome in one transaction through Django's connection (SQLite, and journal replays anywhere)."""
    with transaction.atomic():
        completed = False
        if entry.pending:
            with connection.cursor() as cursor:
                cursor.execute(*completion_statement(entry))
                completed = cursor.fetchone() is not None
        execute_statements(([] if completed else [_row_statement(entry)]) + _attempt_statements(entry))
        for reservation_id, cost in entry.settle:
            budget_settle(reservation_id=reservation_id, actual_cost=cost)
        for reservation_id in entry.release:
            budget_release(reservation_id=reservation_id)


async def _write_outcome(entry: JournalEntry) -> None:
    """One round trip when the pending row is there to complete (the live path); the whole row otherwise.

    When the short form completed nothing, the row was closed already, or lost: the pending write is not
    flushed to disk (budgets.hotpath), and then its attempts fail the short form's transaction (their
    foreign key), which undoes all of it. The whole form follows; every step of it is idempotent, so what a
    committed short form did is not done twice.
    """
    pool = await get_pool()
    if pool is None:
        await run_orm(write_outcome_sync, entry)
        return
    head: list[Statement] = []
    if not settings.ROUTER_LOG_DURABLE_COMMIT:
        head.append(("SET LOCAL synchronous_commit TO OFF", None))
    rest = _attempt_statements(entry)
    rest += [settle_statement(reservation_id=rid, actual_cost=cost) for rid, cost in entry.settle]
    rest += [release_statement(reservation_id=rid) for rid in entry.release]
    if entry.pending:
        try:
            if await run_script([*head, completion_statement(entry), *rest], rows_of=len(head)):
                return
        except IntegrityError:
            pass
    await run_script([*head, _row_statement(entry), *rest])


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
