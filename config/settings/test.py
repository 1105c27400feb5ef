"""Test settings: real PostgreSQL and Redis (defaults to the local services), fast hashing."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/router")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# Celery messages of their own per test run (the gateway and worker subprocesses inherit the name), so runs
# side by side on one Redis never take each other's tasks; and in a Redis database of their own, because
# every test starts by flushing the cache's (db 15), which would also drop the tasks waiting in a queue there.
os.environ.setdefault("CELERY_TASK_DEFAULT_QUEUE", f"test-{os.getpid()}")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/11")
# The access lines of every gateway a test starts would drown the test output; the access log's test turns them on.
os.environ.setdefault("ROUTER_ACCESS_LOG", "false")

from config.settings.base import *  # noqa: F403

APP_ENV = "test"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ROUTER_RETRY_BASE_S = 0.01
ROUTER_RETRY_MAX_S = 0.05
ROUTER_KEY_CACHE_S = 0.0
ROUTER_CATALOG_TTL_S = 0.0
LOGGING["root"]["level"] = "WARNING"  # type: ignore[index]  # noqa: F405
# A database of its own per test run, so runs side by side on one machine never drop each other's.
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME", f"test_router_{os.getpid()}")}  # noqa: F405
