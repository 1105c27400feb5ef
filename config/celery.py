"""The Celery app: Redis broker, JSON only, late acks; periodic jobs on beat."""

from __future__ import annotations

import os

from celery import Celery

from config.env import env_float

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("router")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "release-expired-reservations": {"task": "budgets.tasks.reservations_expire_task", "schedule": 60.0},
    # Budget thresholds crossed: one alert per window and period, its webhook delivered by another task.
    "raise-budget-alerts": {
        "task": "budgets.tasks.budget_alerts_raise_task",
        "schedule": env_float("ROUTER_BUDGET_ALERTS_EVERY_S", 30.0, minimum=1),
    },
    # Journaled outcomes in, then rows still pending after their hold closed at the hold.
    "close-stale-requests": {"task": "routing.tasks.requests_close_task", "schedule": 60.0},
    "refresh-usage-rollups": {"task": "analytics.tasks.rollups_refresh_task", "schedule": 300.0},
    "clear-old-prompts": {"task": "analytics.tasks.retention_apply_task", "schedule": 3600.0},
    "purge-idempotency-records": {"task": "routing.tasks.idempotency_records_purge_task", "schedule": 3600.0},
    # Batches and comparisons whose worker died: run their items again (read here, not from Django settings,
    # because this module is imported while the settings themselves load).
    "resume-batches-and-comparisons": {
        "task": "routing.tasks.batches_resume_task",
        "schedule": env_float("ROUTER_FANOUT_RESUME_EVERY_S", 30.0, minimum=1),
    },
}
