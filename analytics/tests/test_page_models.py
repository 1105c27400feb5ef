"""The models page: the catalog with prices per 1M tokens, sortable; staff get an admin link."""

import pytest

pytestmark = pytest.mark.django_db

URL = "/dashboard/models/"


def test_full_page_lists_the_catalog_with_prices(client, alice, catalog):
    client.force_login(alice)
    html = client.get(URL).content.decode()
    assert "<html" in html
    assert "gpt-4o-mini" in html and "$0.15" in html and "$0.60" in html
    assert "claude-sonnet-4.5" in html  # aliases
    assert "/admin/providers/model/" not in html


def test_htmx_sort_returns_only_the_table_sorted(client, alice, catalog):
    client.force_login(alice)
    html = client.get(URL, {"sort": "input"}, HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<section id="models-table"')
    assert html.index("gemini-2.0-flash") < html.index("claude-opus-4-1-20250805")


def test_staff_get_a_link_to_edit_in_admin(client, admin_user, catalog):
    client.force_login(admin_user)
    assert "/admin/providers/model/" in client.get(URL).content.decode()


def test_an_empty_catalog_says_how_to_load_it(client, alice):
    client.force_login(alice)
    assert "seed_catalog" in client.get(URL).content.decode()
