"""The gateway's reserve, settle and release run as PL/pgSQL functions whose text is budgets.hotpath's."""

from __future__ import annotations

import pytest
from django.db import connection

from budgets.hotpath import FUNCTIONS

pytestmark = pytest.mark.django_db


def test_the_databases_functions_are_the_ones_in_hotpath() -> None:
    """A change to a statement in budgets.hotpath without a migration that replaces its function fails here."""
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT proname, prosrc FROM pg_proc WHERE proname = ANY(%s)", [list(FUNCTIONS)])
        found = dict(cursor.fetchall())
    assert set(found) == set(FUNCTIONS)
    for name, (_, _, body) in FUNCTIONS.items():
        assert found[name].strip() == f"BEGIN\n{body}\nEND", name
