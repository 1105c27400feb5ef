"""analytics.request_pages.page_counted: a page of the log and its total, counted no further than the cap."""

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.request_pages import page_counted
from analytics.tests.factories import GatewayRequestFactory
from routing.models import GatewayRequest

pytestmark = pytest.mark.django_db


@pytest.fixture
def log(alice):
    now = timezone.now()
    for n in range(12):
        GatewayRequestFactory(user=alice, created_at=now - timedelta(seconds=n))
    return GatewayRequest.objects.order_by("-created_at", "-id")


def test_a_capped_page_is_one_count_statement_and_one_row_query(log, django_assert_num_queries):
    with django_assert_num_queries(2) as queries:
        page = page_counted(log, page=1, per_page=2, cap=5)
    count = queries.captured_queries[0]["sql"]
    assert count.startswith("SELECT COUNT(*) FROM (SELECT") and "LIMIT 6" in count
    assert (page.total, page.total_is_lower_bound, page.more, len(page.rows)) == (5, True, True, 2)


def test_a_page_past_the_cap_is_its_rows_alone_without_a_count(log, django_assert_num_queries):
    with django_assert_num_queries(1):
        page = page_counted(log, page=4, per_page=2, cap=5)
    assert (page.total, page.total_is_lower_bound, page.has_next, page.total_pages) == (8, True, True, 4)


def test_an_empty_page_past_the_cap_counts_to_say_how_far_the_bound_goes(log, django_assert_num_queries):
    with django_assert_num_queries(2):
        page = page_counted(log, page=9, per_page=2, cap=5)
    assert (page.rows, page.total, page.total_is_lower_bound, page.has_next) == ([], 5, True, False)
    with django_assert_num_queries(2):
        short = page_counted(log, page=9, per_page=2, cap=15)
    assert (short.rows, short.total, short.total_is_lower_bound) == ([], 12, False)


def test_the_pager_of_a_lower_bound_ends_in_a_gap_not_a_last_page(log):
    assert page_counted(log, page=1, per_page=2, cap=5).nearby_pages() == [1, 2, 3, None]
    assert page_counted(log, page=1, per_page=2, cap=20).nearby_pages() == [1, 2, 3, None, 6]
