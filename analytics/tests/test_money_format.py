"""One money format on every page: $1.00 from a dollar up, the exact amount below ($0.60, $0.075, $0.0000077),
never a price rounded away ($0.075 was "$0.08") nor the same cost shown two ways on two pages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from analytics.templatetags.dashboard_format import usd
from analytics.tests.factories import GatewayRequestFactory

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("amount", "shown"),
    [("0", "$0.00"), ("1", "$1.00"), ("1234.5", "$1,234.50"), ("0.6", "$0.60"), ("0.075", "$0.075"),
     ("0.0000077", "$0.0000077"), ("0.0042", "$0.0042"), ("-0.25", "-$0.25"), ("0.15", "$0.15")],
)  # fmt: skip
def test_amounts(amount, shown):
    assert usd(D(amount)) == shown


def test_the_models_page_shows_a_price_of_0075_as_it_is(client, alice, catalog):
    from providers.models import Model, ModelPrice

    model = (
        Model.objects.get(model_id="gemini-2.0-flash")
        if Model.objects.filter(model_id="gemini-2.0-flash").exists()
        else Model.objects.first()
    )
    ModelPrice.objects.filter(model=model).update(input_per_1m=D("0.075"))
    from providers.catalog import catalog_invalidate

    catalog_invalidate()
    client.force_login(alice)
    html = client.get("/dashboard/models/").content.decode()
    row = html[html.index("gpt-4o-mini") :].split("</tr>")[0]
    assert '<td class="num">$0.075</td>' in row


def test_a_cost_reads_the_same_in_the_list_and_on_its_detail_page(client, alice):
    row = GatewayRequestFactory(user=alice, total_cost_usd=D("0.0000077"), input_cost_usd=D("0.0000017"))
    client.force_login(alice)
    listed = client.get("/dashboard/requests/").content.decode()
    detail = client.get(f"/dashboard/requests/{row.pk}/").content.decode()
    assert "$0.0000077" in listed and "$0.0000077" in detail
    assert "$0.000008" not in detail.replace("$0.0000077", "")
