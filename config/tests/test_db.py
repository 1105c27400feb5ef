"""The hot path's raw statements: the ORM's own SQL and values, compiled once per statement shape."""

import asyncio
import json
from decimal import Decimal

import orjson
import pytest
from django.db import connection
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery
from django.utils import timezone
from psycopg.types.json import Jsonb

from accounts.tests.factories import UserFactory
from config import db
from config.circuit import database_circuit
from config.db import insert_statement, unsaved
from routing.models import Attempt, GatewayRequest


def test_a_one_row_insert_compiled_once_renders_what_the_compiler_renders():
    def row(n: int) -> GatewayRequest:
        return GatewayRequest(
            id=f"req_{n}", user_id=n, created_at=timezone.now(), messages=[{"role": "user", "content": f"hi {n}"}],
            total_cost_usd=Decimal("0.000123") * n, status="pending", tool_calls=[{"id": n}] if n % 2 else None,
        )  # fmt: skip

    fields = [f for f in GatewayRequest._meta.local_concrete_fields]
    conflict = {"on_conflict": OnConflict.UPDATE, "update_fields": fields[1:], "unique_fields": [fields[0]]}
    insert_statement([row(1)], **conflict)  # compiled and remembered
    for n in (2, 3):
        instance = row(n)
        cached = insert_statement([instance], **conflict)
        query = InsertQuery(GatewayRequest, **conflict)
        query.insert_values(fields, [instance])
        sql, params = query.get_compiler(connection=connection).as_sql()[0]
        assert cached[0] == sql
        assert [str(p) for p in cached[1]] == [str(p) for p in params]


def _jsonb_params(instance: GatewayRequest) -> list[Jsonb]:
    return [p for p in insert_statement([instance])[1] if isinstance(p, Jsonb)]


def test_jsonb_values_are_encoded_by_orjson_and_what_it_refuses_by_the_stdlib():
    messages = [{"role": "user", "content": "héllo ✓"}]
    instance = GatewayRequest(
        id="req_json", user_id=1, created_at=timezone.now(), messages=messages, status="pending"
    )
    encoded = {json.dumps(p.obj): p.dumps(p.obj) for p in _jsonb_params(instance)}
    assert encoded[json.dumps(messages)] == orjson.dumps(messages)  # not the ORM's json.dumps (its spacing)
    huge = [{"role": "user", "content": "x", "n": 2**70}]  # past orjson's 64-bit integers
    instance.messages = huge
    encoded = {json.dumps(p.obj): p.dumps(p.obj) for p in _jsonb_params(instance)}
    assert json.loads(encoded[json.dumps(huge)]) == huge


@pytest.mark.django_db
def test_orjson_encoded_rows_read_back_as_written():
    messages = [
        {"role": "user", "content": 'héllo ✓ "quoted"', "n": 2**70},
        {"role": "assistant", "content": "ok"},
    ]
    instance = GatewayRequest(
        id="req_json_rt", user_id=UserFactory().id, created_at=timezone.now(), messages=messages,
        status="pending", tool_calls=[{"id": "call_1", "arguments": {"a": [1, 2.5, None, True]}}],
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(*insert_statement([instance]))
    stored = GatewayRequest.objects.get(id="req_json_rt")
    assert stored.messages == messages
    assert stored.tool_calls == [{"id": "call_1", "arguments": {"a": [1, 2.5, None, True]}}]


def test_an_instance_built_positionally_is_the_one_the_keyword_constructor_builds():
    values = {
        "id": "req_pos", "user_id": 7, "api_key_id": None, "created_at": timezone.now(), "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}], "total_cost_usd": Decimal("0.0001"), "status": "success",
    }  # fmt: skip
    fast, slow = unsaved(GatewayRequest, **values), GatewayRequest(**values)
    assert type(fast) is GatewayRequest and fast._state.adding and fast._state.db is None
    for field in GatewayRequest._meta.concrete_fields:
        assert getattr(fast, field.attname) == getattr(slow, field.attname), field.attname
    assert insert_statement([fast])[0] == insert_statement([slow])[0]
    # A mutable default is the instance's own, as with the keyword constructor.
    other = unsaved(GatewayRequest, id="req_pos2")
    assert (
        fast.usage_anomalies == other.usage_anomalies == []
        and fast.usage_anomalies is not other.usage_anomalies
    )
    attempt = unsaved(Attempt, request_id="req_pos", index=1, model="m", provider="openai", status="error")
    assert (attempt.request_id, attempt.index, attempt.retryable) == (
        "req_pos",
        1,
        Attempt(request_id="x").retryable,
    )


def test_a_value_for_no_field_is_refused():
    with pytest.raises(TypeError, match="no_such_column"):
        unsaved(GatewayRequest, id="req_x", no_such_column=1)


@pytest.mark.django_db(transaction=True)
async def test_a_connection_is_back_in_the_pool_when_its_script_returns_and_only_an_idle_one_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[object] = []

    async def check(conn: object) -> None:
        checked.append(conn)

    monkeypatch.setattr(db.AsyncConnectionPool, "check_connection", staticmethod(check))
    try:
        pool = await db.get_pool()
        assert pool is not None
        await db.run_script([("SELECT 1", None)])
        await asyncio.sleep(0.3)  # the pool done growing to its first connections
        available = pool.get_stats()["pool_available"]
        await db.run_script([("SELECT 1", None)])
        # Returned inline, not by a pool worker the loop runs later: the next caller finds it at once.
        assert pool.get_stats()["pool_available"] >= available
        for _ in range(6):
            assert await db.run_script([("SELECT 2", None)]) == [(2,)]
        # Each connection is checked on its first use (never returned yet), never again while it is busy.
        assert checked and len({id(c) for c in checked}) == len(checked)
        database_circuit.failed()  # the database failed after these were returned: none is trusted now
        database_circuit.reset()
        checks = len(checked)
        await db.run_script([("SELECT 3", None)])
        assert len(checked) == checks + 1
        monkeypatch.setattr(db, "IDLE_CHECK_S", 0.0)
        await db.run_script([("SELECT 3", None)])
        assert len(checked) == checks + 2  # idle past the limit: tested again before use
        async with pool.connection() as conn:
            # A script's values are inlined: psycopg must not count each new text towards preparing it.
            assert conn.prepare_threshold is None and conn.autocommit
    finally:
        await db.close_pools()


@pytest.mark.django_db(transaction=True)
async def test_a_script_returns_the_rows_of_its_last_statement_that_returned_any_or_of_the_one_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_description(cursor: object) -> None:
        raise AssertionError("description builds a Column per column: the result's status says enough")

    monkeypatch.setattr(db.AsyncClientCursor, "description", property(no_description))
    temp = "CREATE TEMP TABLE IF NOT EXISTS script_rows (n int)"
    try:
        assert await db.run_script([("SELECT %s, %s", (1, "a")), (temp, None), ("SELECT 2", None)]) == [(2,)]
        assert await db.run_script([("SELECT 1", None), ("SELECT 2", None)], rows_of=0) == [(1,)]
        # A query that returns no row still returned rows (none of them); a statement that returns none did not.
        assert await db.run_script([("SELECT 1", None), ("SELECT 1 WHERE false", None)]) == []
        assert await db.run_script([("SELECT 1", None), (temp, None)]) == [(1,)]
        assert await db.run_script([(temp, None)]) is None
        assert await db.run_script([(temp, None), ("SELECT 1", None)], rows_of=0) is None
    finally:
        await db.close_pools()
