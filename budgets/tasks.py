"""Periodic budget jobs (Celery beat): release reservations whose process died before settling them."""

from __future__ import annotations

from celery import shared_task

from budgets.services import reservations_expire


@shared_task(ignore_result=True)
def reservations_expire_task() -> int:
    """Returns how many reservations it released (for the worker log)."""
    return reservations_expire()
