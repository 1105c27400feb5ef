"""Budget alerts: a window crossing one of its thresholds (default 80% and 100%) raises one alert per period:
a JSON log line, a metric, a banner for its owner, and a signed webhook POST retried by Celery, all off the
request's path (a periodic job finds the crossings; budgets.tasks delivers).

The webhook body is {"event": "budget.threshold", "scope", "scope_id", "period", "threshold", "spent_usd",
"limit_usd", "period_start", "resets_at"}; `X-Router-Signature: sha256=<hex>` is HMAC-SHA256 of the exact body
with the window's webhook secret, so a receiver can check it came from us and wasn't changed.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
from datetime import datetime

import httpx
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from prometheus_client import Counter

from budgets.models import Budget, BudgetAlert
from budgets.periods import period_end
from budgets.rules import usd, window_state

logger = logging.getLogger(__name__)
ALERTS = Counter(
    "router_budget_alerts", "Budget thresholds crossed (once per window and period)", ["scope", "threshold"]
)
WEBHOOK_TIMEOUT_S = 5.0


def budget_alerts_raise(*, now: datetime | None = None) -> list[BudgetAlert]:
    """Raises the alerts of every threshold a limited window has reached in its current period and not yet
    alerted (the unique constraint makes "once per period" hold across processes). Returns the new ones."""
    moment = now or timezone.now()
    raised: list[BudgetAlert] = []
    limited = Budget.objects.filter(Q(own_limit_usd__isnull=False) | Q(admin_limit_usd__isnull=False))
    for budget in limited.select_related("user", "team", "api_key"):
        state = window_state(budget, moment)
        used, limit = state.used_percentage, state.limit
        if used is None or limit is None:
            continue
        for threshold in state.thresholds:
            if used < threshold:
                break
            try:
                with transaction.atomic():
                    alert = BudgetAlert.objects.create(
                        budget=budget,
                        threshold=threshold,
                        period_start=state.period_start,
                        spent_usd=state.spent,
                        limit_usd=limit,
                    )
            except IntegrityError:
                continue  # alerted already in this period
            raised.append(alert)
            ALERTS.labels(scope=budget.scope, threshold=str(threshold)).inc()
            logger.warning(
                "budget threshold crossed",
                extra={
                    "event": "budget.threshold",
                    "scope": budget.scope,
                    "scope_id": budget.scope_id,
                    "window": state.name,
                    "threshold": threshold,
                    "spent_usd": usd(state.spent),
                    "limit_usd": usd(limit),
                },
            )
            if budget.webhook_url:
                transaction.on_commit(functools.partial(_deliver_later, alert.pk))
    return raised


def _deliver_later(alert_id: int) -> None:
    """Queues the delivery by name (budgets.tasks imports this module); embedded mode runs it here."""
    # On first use: a web process loads Celery only to send (config/__init__.py).
    from config.celery import app

    app.loader.import_default_modules()  # the task registered, for eager mode
    app.signature("budgets.tasks.budget_alert_deliver_task", args=(alert_id,)).delay()


def alert_payload(alert: BudgetAlert) -> dict[str, object]:
    budget = alert.budget
    resets = period_end(budget.period, alert.period_start)
    return {
        "event": "budget.threshold",
        "scope": budget.scope,
        "scope_id": budget.scope_id,
        "period": budget.period,
        "threshold": alert.threshold,
        "spent_usd": usd(alert.spent_usd),
        "limit_usd": usd(alert.limit_usd),
        "period_start": alert.period_start.isoformat(),
        "resets_at": resets.isoformat() if resets else None,
    }


def alert_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def budget_alert_deliver(*, alert_id: int) -> bool:
    """POSTs the alert to its window's webhook once; True when delivered (or nothing to deliver). Raises on a
    failed delivery so that the Celery task retries it with backoff."""
    alert = BudgetAlert.objects.select_related("budget").filter(pk=alert_id).first()
    if alert is None or alert.delivered_at is not None or not alert.budget.webhook_url:
        return True
    body = json.dumps(alert_payload(alert), separators=(",", ":")).encode()
    BudgetAlert.objects.filter(pk=alert_id).update(delivery_attempts=alert.delivery_attempts + 1)
    response = httpx.post(
        alert.budget.webhook_url,
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Router-Event": "budget.threshold",
            "X-Router-Signature": alert_signature(alert.budget.webhook_secret, body),
        },
        timeout=WEBHOOK_TIMEOUT_S,
    )
    response.raise_for_status()
    BudgetAlert.objects.filter(pk=alert_id, delivered_at__isnull=True).update(delivered_at=timezone.now())
    return True
