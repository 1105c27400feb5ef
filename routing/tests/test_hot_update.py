"""On PostgreSQL the outcome completes its pending row with a HOT update: the new row version goes on the
same page and no index is written again (not the btrees, not the prompt's trigrams). An index on a column
the outcome changes (it was `status`) turns every outcome into a full rewrite of all the row's indexes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from routing.models import GatewayRequest
from routing.pipeline.journal import JournalEntry
from routing.pipeline.writes import completion_statement, pending_statement

pytestmark = pytest.mark.django_db

LONG = "Summarise the attached design document, section by section. " * 1100  # ~64 KiB, TOASTed


def _rows(user_id: int, request_id: str) -> tuple[GatewayRequest, GatewayRequest]:
    common = {
        "id": request_id,
        "user_id": user_id,
        "created_at": timezone.now(),
        "requested_model": "gpt-4o-mini",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "messages": [{"role": "user", "content": LONG}],
        "prompt_text": LONG,
        "candidates": ["gpt-4o-mini"],
    }
    pending = GatewayRequest(**common, status="pending", http_status=0)
    done = GatewayRequest(
        **common,
        status="success",
        http_status=200,
        completed_at=timezone.now(),
        response_text="Section one says...",
        input_tokens=16_000,
        output_tokens=120,
        total_tokens=16_120,
        total_cost_usd=Decimal("0.0024672"),
        latency_ms=850,
    )
    return pending, done


def _updates() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated(%s::regclass), "
            "pg_stat_get_xact_tuples_hot_updated(%s::regclass)",
            [GatewayRequest._meta.db_table] * 2,
        )
        updated, hot = cursor.fetchone()
    return updated, hot


def test_the_outcome_completes_a_long_prompts_pending_row_without_writing_an_index(alice) -> None:
    assert connection.vendor == "postgresql"
    pending, done = _rows(alice.pk, "req_hot")
    entry = JournalEntry(row=done, attempts=[], settle=[], release=[], pending=True)
    with connection.cursor() as cursor:
        cursor.execute(*pending_statement(pending))
        before = _updates()
        cursor.execute(*completion_statement(entry))
        assert cursor.fetchone() == ("req_hot",)
    updated, hot = (now - then for now, then in zip(_updates(), before, strict=True))
    assert (updated, hot) == (1, 1)
    row = GatewayRequest.objects.get(pk="req_hot")
    assert row.status == "success" and row.prompt_text == LONG and row.total_cost_usd == Decimal("0.0024672")


def test_no_index_of_the_log_covers_a_column_the_outcome_changes() -> None:
    """What keeps the update HOT, checked for every index (expressions and predicates included)."""
    changes = {"status", "completed_at", "response_text", "input_tokens", "output_tokens", "total_cost_usd"}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid = %s::regclass",
            [GatewayRequest._meta.db_table],
        )
        definitions = dict(cursor.fetchall())
    assert definitions
    for name, definition in definitions.items():
        columns = definition.split(" USING ", 1)[1]
        assert not any(column in columns for column in changes), (name, definition)
