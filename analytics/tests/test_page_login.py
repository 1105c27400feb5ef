"""Logging in to the dashboard with Django's session auth."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_login_page_renders_a_form_with_csrf(client):
    html = client.get("/accounts/login/").content.decode()
    assert 'name="username"' in html and 'name="password"' in html and "csrfmiddlewaretoken" in html


def test_logging_in_lands_on_the_dashboard(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-for-tests"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200


def test_a_wrong_password_says_so(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert "didn't match" in response.content.decode()


def test_logging_out_needs_a_post_and_ends_the_session(client, alice):
    client.force_login(alice)
    client.post("/accounts/logout/")
    assert client.get("/dashboard/").status_code == 302
