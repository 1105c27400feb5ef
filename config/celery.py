"""The Celery app: Redis broker, JSON only, late acks; periodic jobs on beat."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("router")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "release-expired-reservations": {"task": "budgets.tasks.reservations_expire_task", "schedule": 60.0},
    "refresh-usage-rollups": {"task": "analytics.tasks.rollups_refresh_task", "schedule": 300.0},
    "clear-old-prompts": {"task": "analytics.tasks.retention_apply_task", "schedule": 3600.0},
}
