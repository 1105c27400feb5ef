"""Migration 0005: the rollups gain the API key; rows rolled up without it are dropped with the watermark, so
reads go to the log until the next refresh rebuilds them with their keys."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("analytics", "0004_rollups_by_door")]
AFTER = [("analytics", "0005_rollups_by_key")]


@pytest.mark.django_db(transaction=True)
def test_the_keyless_rollups_and_their_watermark_go(alice):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    old.get_model("analytics", "DailyUsage").objects.create(
        user_id=alice.pk, date=timezone.now().date(), requests=3
    )
    old.get_model("analytics", "JobState").objects.create(name="rollups", rolled_until=timezone.now())
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        new = executor.loader.project_state(AFTER).apps
        assert not new.get_model("analytics", "DailyUsage").objects.exists()
        assert new.get_model("analytics", "JobState").objects.get(name="rollups").rolled_until is None
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
