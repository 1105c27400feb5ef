"""Operational endpoints answer without a key; readiness reflects the database and Redis."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_health_answers_ok():
    response = Client().get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_ready_checks_database_and_redis():
    response = Client().get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": True, "redis": True}


def test_ready_says_503_when_redis_is_unreachable(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: refused at once
    response = Client().get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] is False


def test_openapi_schema_and_docs_are_served():
    schema = Client().get("/openapi.json")
    assert schema.status_code == 200
    assert "/v1/models" in schema.json()["paths"]
    docs = Client().get("/docs")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_every_response_carries_a_request_id():
    response = Client().get("/health")
    assert response["X-Request-Id"].startswith("req_")


def test_an_unknown_v1_path_answers_404():
    assert Client().get("/v1/nope").status_code == 404


def test_admin_login_page_is_served():
    assert Client().get("/admin/login/").status_code == 200


def test_production_settings_pass_check_deploy(tmp_path):
    import os
    import subprocess
    import sys

    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "k3y-" + "aB9xQ7zLm2" * 6,
        "ALLOWED_HOSTS": "router.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
