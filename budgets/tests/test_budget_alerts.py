"""Budget alerts: each threshold fires once per period (log line, metric, banner data), and its webhook is
signed and delivered by a real Celery worker, retried while the receiver fails."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from accounts.services import team_create
from budgets.alerts import budget_alerts_raise
from budgets.models import Budget, BudgetAlert
from budgets.periods import period_start
from budgets.selectors import alerts_current
from budgets.tasks import budget_alerts_raise_task

D = Decimal


class Receiver:
    """A webhook endpoint that answers 500 to the first `failures` deliveries, then 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                ok = len(receiver.received) > receiver.failures
                self.send_response(200 if ok else 500)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver(failures=1)
    yield hook
    hook.server.shutdown()


def _count(threshold: str) -> float:
    return (
        REGISTRY.get_sample_value("router_budget_alerts_total", {"scope": "team", "threshold": threshold})
        or 0
    )


@pytest.mark.django_db(transaction=True)
def test_each_threshold_fires_once_per_period(alice, caplog):
    team = team_create(name="growth", members=[alice])
    window = Budget.objects.create(
        scope="team",
        team=team,
        period="daily",
        admin_limit_usd=D("10"),
        period_start=period_start("daily", timezone.now()),
    )
    before_80, before_100 = _count("80"), _count("100")
    Budget.objects.filter(pk=window.pk).update(spent_usd=D("7.99"))
    assert budget_alerts_raise() == []
    Budget.objects.filter(pk=window.pk).update(spent_usd=D("8.00"))
    assert [a.threshold for a in budget_alerts_raise()] == [80]
    assert budget_alerts_raise() == []  # once per period, however often the job runs
    Budget.objects.filter(pk=window.pk).update(spent_usd=D("10.00"))
    assert [a.threshold for a in budget_alerts_raise()] == [100]
    assert budget_alerts_raise() == []
    assert (_count("80") - before_80, _count("100") - before_100) == (1, 1)
    lines = [r for r in caplog.records if r.getMessage() == "budget threshold crossed"]
    assert [(r.threshold, r.scope, r.scope_id) for r in lines] == [
        (80, "team", team.pk),
        (100, "team", team.pk),
    ]
    assert [a.threshold for a in alerts_current(window_ids=[window.pk])] == [100]  # the banner's

    # The next day is a new period: the window counts from zero, and fires again when it fills again.
    tomorrow = timezone.now() + timedelta(days=1)
    assert budget_alerts_raise(now=tomorrow) == []
    Budget.objects.filter(pk=window.pk).update(spent_usd=D("9"), period_start=period_start("daily", tomorrow))
    assert [a.threshold for a in budget_alerts_raise(now=tomorrow)] == [80]
    assert BudgetAlert.objects.filter(budget=window).count() == 3


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_webhook_is_signed_and_retried_by_the_worker_until_delivered(alice, receiver, fake_upstream):
    from routing.tests.conftest import LiveWorker
    from routing.tests.live import live_database_url

    team = team_create(name="ops", members=[alice])
    window = Budget.objects.create(
        scope="team",
        team=team,
        period="monthly",
        admin_limit_usd=D("5"),
        spent_usd=D("4.5"),
        period_start=period_start("monthly", timezone.now()),
        webhook_url=receiver.url,
        webhook_secret="s3cret",
    )
    with LiveWorker(database_url=live_database_url(), upstream=fake_upstream, concurrency=1) as worker:
        budget_alerts_raise_task.delay()  # beat's job, run by the worker; it queues the delivery
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and not BudgetAlert.objects.filter(delivered_at__isnull=False).exists()
        ):
            time.sleep(0.3)
        assert BudgetAlert.objects.filter(delivered_at__isnull=False).exists(), worker.log()[-3000:]
    alert = BudgetAlert.objects.get(budget=window)
    assert alert.threshold == 80 and alert.delivery_attempts == 2  # the first delivery got a 500
    assert len(receiver.received) == 2
    headers, body = receiver.received[-1]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["x-router-signature"] == expected
    payload = json.loads(body)
    assert payload == {
        "event": "budget.threshold",
        "scope": "team",
        "scope_id": team.pk,
        "period": "monthly",
        "threshold": 80,
        "spent_usd": "4.5",
        "limit_usd": "5",
        "period_start": window.period_start.isoformat(),
        "resets_at": payload["resets_at"],
    }
    assert payload["resets_at"] > payload["period_start"]
