"""Periodic analytics jobs on Celery beat (see config/celery.py): thin wrappers around the services."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from analytics.services import retention_apply, rollups_refresh


@shared_task(ignore_result=True)
def rollups_refresh_task() -> dict[str, Any]:
    result = rollups_refresh()
    return {"rolled_until": result.rolled_until.isoformat(), "usage_rows": result.usage_rows}


@shared_task(ignore_result=True)
def retention_apply_task() -> dict[str, Any]:
    result = retention_apply()
    return {"requests_cleared": result.requests_cleared}
