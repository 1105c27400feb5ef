"""The gateway's reserve, settle and release as PL/pgSQL functions (budgets.hotpath.FUNCTIONS), so PostgreSQL
keeps their plans per connection. Nothing on SQLite, where the ORM services run instead."""

from django.db import migrations

from budgets.hotpath import FUNCTIONS, function_ddl


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in FUNCTIONS:
            schema_editor.execute(function_ddl(name))


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, (arguments, _, _) in FUNCTIONS.items():
            types = ", ".join(part.split()[1] for part in arguments.split(", "))
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}({types})")


class Migration(migrations.Migration):
    dependencies = [("budgets", "0003_budget_windows"), ("accounts", "0003_key_tpm_default")]

    operations = [migrations.RunPython(create, drop)]
