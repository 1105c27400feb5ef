"""A newcomer's first hour: what the response says agrees with what was logged."""

from __future__ import annotations

import httpx
import pytest

from accounts.tests.factories import UserFactory
from routing.models import GatewayRequest


@pytest.mark.e2e
def test_the_latency_in_the_answer_is_the_latency_in_the_log(e2e, alice_key, fake_upstream):
    fake_upstream.control(model="gpt-4o-mini", delay_ms=40)
    for index in range(3):
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Latency {index}?"}]}
        response = httpx.post(
            e2e.url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {alice_key}"},
            json=body,
            timeout=30,
        )
        assert response.status_code == 200
        row = GatewayRequest.objects.get(pk=response.headers["X-Request-Id"])
        assert response.json()["latency_ms"] == row.latency_ms >= 40


@pytest.mark.django_db
def test_the_favicon_is_served_not_a_404(client):
    from django.contrib.staticfiles import finders

    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
    assert finders.find("favicon.svg") is not None
    client.force_login(UserFactory(username="icon"))
    assert 'rel="icon"' in client.get("/dashboard/").content.decode()
