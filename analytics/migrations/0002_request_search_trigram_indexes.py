"""Trigram GIN indexes so the request-log search (case-insensitive substring) stays fast at millions of rows.

Django renders `icontains` on PostgreSQL as UPPER(col::text) LIKE UPPER(%s), so the indexes are on exactly
that expression. PostgreSQL only; other databases skip this migration's SQL. Built CONCURRENTLY (hence a
non-atomic migration) so that adding them to a busy log does not block writes.
"""

from django.db import migrations

INDEXES = {
    "analytics_request_prompt_trgm": "prompt_text",
    "analytics_request_model_trgm": "model",
    "analytics_request_provider_trgm": "provider",
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON routing_gatewayrequest "
            f"USING gin (UPPER({column}::text) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("analytics", "0001_initial"),
        ("routing", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
