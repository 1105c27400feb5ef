"""Budget jobs: release reservations whose process died before settling them, raise threshold alerts (beat),
and deliver their webhooks (retried)."""

from __future__ import annotations

import httpx
from celery import shared_task

from budgets.alerts import budget_alert_deliver, budget_alerts_raise
from budgets.services import reservations_expire


@shared_task(ignore_result=True)
def reservations_expire_task() -> int:
    """Returns how many reservations it released (for the worker log)."""
    return reservations_expire()


@shared_task(ignore_result=True)
def budget_alerts_raise_task() -> int:
    """Raises the alerts of thresholds crossed since the last run (beat); returns how many."""
    return len(budget_alerts_raise())


@shared_task(
    ignore_result=True,
    autoretry_for=(httpx.HTTPError,),
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=10,
)
def budget_alert_deliver_task(alert_id: int) -> bool:
    """Delivers one alert to its webhook, retried with backoff while the receiver fails."""
    return budget_alert_deliver(alert_id=alert_id)
