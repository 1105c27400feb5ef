"""The hot path's raw statements: the ORM's own SQL and values, compiled once per statement shape."""

from decimal import Decimal

from django.db import connection
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery
from django.utils import timezone

from config.db import insert_statement
from routing.models import GatewayRequest


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
