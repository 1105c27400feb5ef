"""reservations_expire_task: a hold whose process died (never settled) is released once it expires."""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone

from budgets.limits import budget_state
from budgets.models import Budget, Reservation
from budgets.services import budget_get_or_create, budget_reserve, budget_settle
from budgets.tasks import reservations_expire_task
from budgets.tests.conftest import GATEWAY_ENV
from config.api_errors import BudgetExceeded
from routing.tests.live import LiveGateway, live_database_url

D = Decimal
pytestmark = pytest.mark.django_db


def _limit(user, amount: Decimal) -> None:
    Budget.objects.filter(pk=budget_get_or_create(user_id=user.pk).pk).update(own_limit_usd=amount)


def _age(reservation: Reservation, seconds: int) -> None:
    """What a killed process leaves behind: an open hold, `seconds` past its expiry."""
    Reservation.objects.filter(pk=reservation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_a_reservation_never_settled_is_released_by_the_periodic_job_after_it_expires(alice):
    _limit(alice, D("1.00"))
    orphan = budget_reserve(user_id=alice.pk, amount=D("0.80"), request_id="req_killed")
    with pytest.raises(BudgetExceeded):
        budget_reserve(user_id=alice.pk, amount=D("0.50"))  # the orphan blocks the budget meanwhile

    _age(orphan, 1)
    assert reservations_expire_task() == 1

    orphan.refresh_from_db()
    assert orphan.status == Reservation.Status.EXPIRED
    assert orphan.settled_usd == 0 and orphan.closed_at is not None
    state = budget_state(user_id=alice.pk)
    assert state.reserved == 0 and state.spent == 0 and state.remaining == D("1.00")
    budget_reserve(user_id=alice.pk, amount=D("0.50"))  # the room is back


def test_a_live_reservation_is_left_alone(alice):
    live = budget_reserve(user_id=alice.pk, amount=D("0.30"))
    assert reservations_expire_task() == 0
    live.refresh_from_db()
    assert live.status == Reservation.Status.OPEN
    assert budget_state(user_id=alice.pk).reserved == D("0.30")


def test_the_job_releases_only_the_expired_ones_among_many(alice, bob):
    dead = [budget_reserve(user_id=user.pk, amount=D("0.10")) for user in (alice, alice, bob)]
    live = [budget_reserve(user_id=user.pk, amount=D("0.05")) for user in (alice, bob)]
    for reservation in dead:
        _age(reservation, 60)
    assert reservations_expire_task() == 3
    assert budget_state(user_id=alice.pk).reserved == D("0.05")
    assert budget_state(user_id=bob.pk).reserved == D("0.05")
    assert {r.status for r in Reservation.objects.filter(pk__in=[r.pk for r in live])} == {"open"}


def test_settled_and_released_reservations_are_not_touched(alice):
    settled = budget_reserve(user_id=alice.pk, amount=D("0.30"))
    budget_settle(reservation_id=settled.pk, actual_cost=D("0.10"))
    _age(settled, 60)
    assert reservations_expire_task() == 0
    settled.refresh_from_db()
    assert settled.status == Reservation.Status.SETTLED
    state = budget_state(user_id=alice.pk)
    assert state.spent == D("0.10") and state.reserved == 0


def test_the_beat_schedule_runs_the_job_every_minute():
    from config.celery import app

    entry = next(
        e for e in app.conf.beat_schedule.values() if e["task"] == "budgets.tasks.reservations_expire_task"
    )
    assert entry["schedule"] == 60.0
    assert reservations_expire_task.name == "budgets.tasks.reservations_expire_task"


@pytest.mark.e2e
def test_a_gateway_killed_mid_request_leaves_a_hold_that_the_job_releases(
    transactional_db, catalog, fake_upstream, alice, alice_key
):
    fake_upstream.clear()
    fake_upstream.control(model="gpt-4o-mini", delay_ms=5000)
    gateway = LiveGateway(database_url=live_database_url(), upstream=fake_upstream, env=GATEWAY_ENV).start()
    try:

        def call() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the process dies under it
                httpx.post(
                    gateway.url + "/v1/chat/completions",
                    headers={"Authorization": f"Bearer {alice_key}"},
                    json={
                        "model": "gpt-4o-mini",
                        "messages": [{"role": "user", "content": "Hi"}],
                        "max_tokens": 5,
                    },
                    timeout=10,
                )

        caller = threading.Thread(target=call)
        caller.start()
        # The hold is committed before the provider is called: once the fake has the request, it exists.
        deadline = time.monotonic() + 20
        while not fake_upstream.requests(model="gpt-4o-mini") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gateway.process is not None
        gateway.process.kill()  # SIGKILL: no chance to settle or release
        gateway.process.wait()
        caller.join()
    finally:
        gateway.stop()
        fake_upstream.clear()

    orphan = Reservation.objects.get(user=alice)
    assert orphan.status == Reservation.Status.OPEN
    assert budget_state(user_id=alice.pk).reserved == orphan.amount_usd > 0

    assert reservations_expire_task() == 0  # not before it expires
    _age(orphan, 1)
    assert reservations_expire_task() == 1
    orphan.refresh_from_db()
    assert orphan.status == Reservation.Status.EXPIRED
    assert budget_state(user_id=alice.pk).reserved == 0
