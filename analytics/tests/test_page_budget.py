"""The budget page: spent, limit, remaining, period; a form to set or remove one's own limit."""

from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.tests.factories import GatewayRequestFactory
from budgets.models import Budget

pytestmark = pytest.mark.django_db

URL = "/dashboard/budget/"


def _budget(user, **fields):
    month = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return Budget.objects.create(user=user, period_start=month, **fields)


def test_full_page_shows_spent_limit_remaining_and_percentage(client, alice):
    _budget(alice, spent_usd=Decimal("2.5"), own_limit_usd=Decimal(10))
    GatewayRequestFactory(user=alice, total_cost_usd=Decimal("2.5"))
    client.force_login(alice)
    html = client.get(URL).content.decode()
    assert "<html" in html
    assert "$2.50" in html and "$10.00" in html and "$7.50" in html
    assert "25.0%" in html
    assert 'data-chart="budget"' in html and "resets" in html


def test_without_a_budget_row_it_shows_no_limit(client, alice):
    client.force_login(alice)
    html = client.get(URL).content.decode()
    assert "unlimited" in html and ">none<" in html


def test_htmx_request_gets_only_the_body_fragment(client, alice):
    client.force_login(alice)
    html = client.get(URL, HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="budget-body">') and "<html" not in html


def test_setting_a_limit_calls_the_budget_service(client, alice):
    client.force_login(alice)
    response = client.post(URL, {"limit_usd": "25"})
    assert response.status_code == 303
    assert Budget.objects.get(user=alice).own_limit_usd == Decimal(25)
    assert "Your limit is now $25." in client.get(URL).content.decode()


def test_setting_a_limit_with_htmx_returns_the_updated_fragment(client, alice):
    client.force_login(alice)
    html = client.post(URL, {"limit_usd": "12.5"}, HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="budget-body">')
    assert "Your limit is now $12.5." in html and "$12.50" in html


def test_removing_the_limit(client, alice):
    _budget(alice, own_limit_usd=Decimal(5))
    client.force_login(alice)
    client.post(URL, {"limit_usd": "5", "remove": "1"})
    assert Budget.objects.get(user=alice).own_limit_usd is None


def test_a_negative_limit_is_refused(client, alice):
    client.force_login(alice)
    response = client.post(URL, {"limit_usd": "-1"})
    assert response.status_code == 400
    assert not Budget.objects.filter(user=alice, own_limit_usd__isnull=False).exists()


def test_a_limit_above_the_admin_limit_shows_the_services_reason(client, alice):
    _budget(alice, admin_limit_usd=Decimal(10))
    client.force_login(alice)
    response = client.post(URL, {"limit_usd": "50"}, HTTP_HX_REQUEST="true")
    assert "administrator" in response.content.decode()
    assert Budget.objects.get(user=alice).own_limit_usd is None


def test_the_form_needs_the_csrf_token(alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(URL, {"limit_usd": "25"}).status_code == 403
