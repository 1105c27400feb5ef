"""The outcome's UPDATE of a request row becomes a HOT update (no index written again).

- `request_user_status` goes: `status` is the one indexed column every outcome changes. The closing job finds
  pending rows through their holds (routing.services.requests_close), the request list's status filter walks
  `request_user_created`.
- fillfactor 85 leaves room on each page for the row's next version, which a HOT update needs (PostgreSQL
  only; SQLite has no such setting).
"""

from django.db import migrations


def fillfactor(value: int | None):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        if value is None:
            schema_editor.execute("ALTER TABLE routing_gatewayrequest RESET (fillfactor)")
        else:
            schema_editor.execute(f"ALTER TABLE routing_gatewayrequest SET (fillfactor = {int(value)})")

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0006_idempotency_records"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="gatewayrequest",
            name="request_user_status",
        ),
        migrations.RunPython(fillfactor(85), fillfactor(None)),
    ]
