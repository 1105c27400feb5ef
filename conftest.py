"""Shared fixtures: the personas (alice, bob, an admin), their API keys, and a seeded catalog."""

from __future__ import annotations

import contextlib

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.authentication import forget_cached_keys
from accounts.services import api_key_issue
from accounts.tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _fresh_state():
    """Each test starts with an empty cache, no remembered keys and this process's circuits closed (a Redis
    timeout under load in one test must not refuse the next tests' Redis calls for the circuit's seconds)."""
    from config.circuit import database_circuit
    from config.redis_clients import redis_circuit
    from routing.services.dispatch import broker_circuit

    for circuit in (redis_circuit, database_circuit, broker_circuit):
        circuit.reset()
    forget_cached_keys()
    with contextlib.suppress(Exception):  # a test that stopped Redis must not break the next one's set-up
        cache.clear()
    yield
    forget_cached_keys()


@pytest.fixture(autouse=True)
def _httpcore_beneath_respx(request):
    """respx mocks httpcore, httpx's own transport, so a test that uses respx gets that transport beneath the
    upstream client instead of aiohttp's (providers.http); every other test runs the deployed one."""
    if "respx_mock" not in request.fixturenames and "respx" not in vars(request.module):
        yield
        return
    from providers import http

    request.getfixturevalue("settings").ROUTER_UPSTREAM_TRANSPORT = "httpx"
    http._clients.clear()
    yield
    http._clients.clear()


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def alice_key(alice) -> str:
    return api_key_issue(user=alice, name="alice-key")[1]


@pytest.fixture
def bob_key(bob) -> str:
    return api_key_issue(user=bob, name="bob-key")[1]


@pytest.fixture
def alice_api(alice_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice_key}")
    return client


@pytest.fixture
def bob_api(bob_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {bob_key}")
    return client


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, and at the end no connection left on the test database, so Django can drop it. Worker
    threads of this process (sync_to_async, asyncio.to_thread) keep their own Django connections, idle, until
    the process exits: they left every run's test database behind ("being accessed by other users")."""
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture
def catalog(db):
    from providers.catalog import catalog_invalidate
    from providers.services import catalog_seed

    catalog_seed()
    catalog_invalidate()
    yield
    catalog_invalidate()


# --- End-to-end: the fake upstream and a live gateway process (session-wide), reset for every test.


@pytest.fixture(scope="session")
def fake_upstream():
    from providers.fake_upstream import FakeUpstreamProcess

    with FakeUpstreamProcess() as upstream:
        yield upstream


@pytest.fixture(scope="session")
def live_gateway(django_db_setup, django_db_blocker, fake_upstream):
    from routing.tests.live import LiveGateway, live_database_url

    with django_db_blocker.unblock():
        url = live_database_url()
    env = {"ROUTER_UPSTREAM_TIMEOUT_S": "2", "ROUTER_RETRY_AFTER_MAX_S": "5"}
    with LiveGateway(database_url=url, upstream=fake_upstream, env=env) as gateway:
        yield gateway


@pytest.fixture
def e2e(transactional_db, catalog, fake_upstream, live_gateway):
    """A clean fake upstream and catalog, with committed data the live gateway can see."""
    fake_upstream.clear()
    yield live_gateway
    fake_upstream.clear()


@pytest.fixture
def sdk(e2e, alice_key):
    import openai

    return openai.OpenAI(base_url=e2e.url + "/v1", api_key=alice_key, max_retries=0, timeout=30)
