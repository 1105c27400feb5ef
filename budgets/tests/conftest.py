"""Fixtures for the budget end-to-end tests: two gateway processes sharing one database and one Redis."""

from __future__ import annotations

import pytest

GATEWAY_ENV = {
    "ROUTER_UPSTREAM_TIMEOUT_S": "10",
    "ROUTER_RETRY_AFTER_MAX_S": "5",
    # Small pools, as a deployment sized for a shared PostgreSQL would have (max_connections is 100 here,
    # shared with the other gateways and workers of the test run): the ORM pool serves a handful of
    # worker threads, the async pool the hot path's reserve and log statements.
    "DB_POOL_MAX": "8",
    "DB_ASYNC_POOL_MAX": "12",
}


@pytest.fixture(scope="session")
def gateway_pair(django_db_setup, django_db_blocker, fake_upstream):
    """Two separate uvicorn processes (two ports), so a test decides which process serves each request."""
    from routing.tests.live import LiveGateway, live_database_url

    with django_db_blocker.unblock():
        url = live_database_url()
    with (
        LiveGateway(database_url=url, upstream=fake_upstream, env=GATEWAY_ENV) as first,
        LiveGateway(database_url=url, upstream=fake_upstream, env=GATEWAY_ENV) as second,
    ):
        yield first, second


@pytest.fixture
def two_gateways(transactional_db, catalog, fake_upstream, gateway_pair):
    """Both processes, a clean fake upstream, and committed data they can see."""
    fake_upstream.clear()
    yield gateway_pair
    fake_upstream.clear()
