"""One money format on every page: $1.00 from a dollar up, four significant digits below ($0.60, $0.075,
$0.008273, $0.0000077) for what is summed or averaged; one record's own amount (a request's cost, a catalog price)
exact in the same shape. Never a price rounded away ($0.075 was "$0.08"), never a ten-digit average, never the
same cost shown two ways on two pages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from analytics.templatetags.dashboard_format import usd, usd_exact
from analytics.tests.factories import GatewayRequestFactory

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("amount", "shown"),
    [("0", "$0.00"), ("1", "$1.00"), ("1234.5", "$1,234.50"), ("0.6", "$0.60"), ("0.075", "$0.075"),
     ("0.0000077", "$0.0000077"), ("0.0042", "$0.0042"), ("-0.25", "-$0.25"), ("0.15", "$0.15"),
     ("0.0082726091", "$0.008273"), ("0.60495298", "$0.605"), ("22.7512", "$22.75"), ("0.99996", "$1.00"),
     ("0.00000000001", "$0.0000000001")],
)  # fmt: skip
def test_amounts(amount, shown):
    assert usd(D(amount)) == shown


@pytest.mark.parametrize(
    ("amount", "shown"),
    [("0", "$0.00"), ("25", "$25.00"), ("0.075", "$0.075"), ("0.0082726091", "$0.0082726091"),
     ("15.625", "$15.625"), ("1234.5", "$1,234.50"), ("-0.0000017", "-$0.0000017")],
)  # fmt: skip
def test_exact_amounts(amount, shown):
    assert usd_exact(D(amount)) == shown


def test_an_average_on_the_overview_has_four_significant_digits(client, alice):
    for cost in ("0.0100000001", "0.0065452181", "0.0082726091"):
        GatewayRequestFactory(user=alice, total_cost_usd=D(cost))
    client.force_login(alice)
    html = client.get("/dashboard/").content.decode()
    card = html.split("Avg cost / request</span>")[1].split("</strong>")[0]
    assert card.endswith("$0.008273")  # (0.0100000001 + 0.0065452181 + 0.0082726091) / 3, rounded


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
