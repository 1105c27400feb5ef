"""generate_test_data bulk-inserts realistic, consistent request rows."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum

from routing.models import GatewayRequest

pytestmark = pytest.mark.django_db


def test_it_inserts_the_requested_rows_with_consistent_costs(catalog):
    call_command("generate_test_data", "--user", "loadtest", "--count", "2500", "--days", "30", "--seed", "7")
    rows = GatewayRequest.objects.filter(user__username="loadtest")
    assert rows.count() == 2500
    sample = rows.filter(cached=False, status="success").first()
    assert sample.total_cost_usd == sample.input_cost_usd + sample.output_cost_usd > Decimal(0)
    assert sample.price_id is not None
    assert rows.filter(cached=True).aggregate(s=Sum("total_cost_usd"))["s"] == Decimal(0)


def test_it_refuses_an_empty_catalog(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("generate_test_data", "--count", "10")
