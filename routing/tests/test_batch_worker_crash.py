"""A worker killed mid-batch loses nothing and charges nothing twice; the delivery cases behind that promise."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core.cache import cache
from django.utils import timezone

from budgets.models import Budget, Reservation
from budgets.services import budget_reserve
from providers.catalog import catalog_invalidate
from routing.models import BatchItem, BatchJob, GatewayRequest
from routing.services import batch_lanes, batches, fanout
from routing.tasks import batches_resume_task
from routing.tests.conftest import api_client

pytestmark = pytest.mark.e2e
LEASE_S = 3  # short, so the test need not wait the production lease out
DONE = ("success", "error")


def _messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Crash test question {i:02d}"}]


def _wait_for(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    tick: Callable[[], None] | None = None,
    explain: Callable[[], str] = str,
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if tick is not None:
            tick()
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{explain()}")


def test_a_worker_killed_mid_batch_loses_nothing_and_every_item_is_charged_once(
    e2e, alice, alice_key, worker_factory, fake_upstream
):
    fake_upstream.control(model="gpt-4o-mini", delay_ms=500)
    env = {"ROUTER_FANOUT_LEASE_S": str(LEASE_S), "ROUTER_BATCH_CONCURRENCY": "4"}
    first = worker_factory(concurrency=4, env=env)
    with api_client(e2e.url, alice_key) as client:
        response = client.post(
            "/chat/batch",
            json={
                "requests": [{"messages": _messages(i)} for i in range(20)],
                "model": "gpt-4o-mini",
                "max_tokens": 20,
                "wait": False,
            },
        )
    assert response.status_code == 202
    batch_id = response.json()["batch_id"]
    items = BatchItem.objects.filter(batch_id=batch_id)

    def explain() -> str:
        states = list(items.order_by("index").values_list("index", "status", "attempts"))
        return (
            f"items: {states}\nfirst worker:\n{first.log()[-3000:]}\nsecond worker:\n{second.log()[-3000:]}"
        )

    second = first  # until the second one starts
    _wait_for(
        lambda: items.filter(status="success").count() >= 4 and items.filter(status="running").exists(),
        30,
        "the first worker to be mid-batch",
        explain=explain,
    )
    first.kill()
    killed_running = set(items.filter(status="running").values_list("pk", flat=True))
    assert killed_running, "the kill should have caught items in flight"
    assert items.exclude(status__in=DONE).count() > len(killed_running)  # and some not started yet

    second = worker_factory(concurrency=4, env=env)
    # Celery beat's job, sent through the broker to the new worker, picks up what the dead one held.
    last_tick = [0.0]

    def beat() -> None:
        if time.monotonic() - last_tick[0] >= 1:
            batches_resume_task.apply_async()
            last_tick[0] = time.monotonic()

    _wait_for(  # every item done and the batch completed (by the worker after its last item, or the beat)
        lambda: (
            items.filter(status__in=DONE).count() == 20
            and BatchJob.objects.filter(pk=batch_id, status="completed").exists()
        ),
        60,
        "the batch to finish",
        tick=beat,
        explain=explain,
    )
    second.stop()

    assert set(items.values_list("status", flat=True)) == {"success"}
    # Run again by the new worker (more than once if a run outlived the test's very short lease).
    assert min(items.filter(pk__in=killed_running).values_list("attempts", flat=True)) >= 2
    rows = GatewayRequest.objects.filter(batch_id=batch_id)
    assert rows.count() == 20  # one log row per item, whatever ran twice
    assert sorted(items.values_list("request_id", flat=True)) == sorted(rows.values_list("id", flat=True))
    assert rows.filter(status="success", total_cost_usd__gt=0).count() == 20
    reservations = Reservation.objects.filter(user=alice)
    assert reservations.count() == 20 and set(reservations.values_list("status", flat=True)) == {"settled"}
    budget = Budget.objects.get(user=alice)
    assert budget.spent_usd == sum(row.total_cost_usd for row in rows)
    assert budget.reserved_usd == 0
    # Calls in flight when the worker died were made again: the provider may have seen them twice, the user
    # pays once.
    assert len(fake_upstream.requests(model="gpt-4o-mini")) >= 20
    with api_client(e2e.url, alice_key) as client:
        body = client.get(f"/chat/batch/{batch_id}").json()
    assert (body["status"], body["successful"], body["failed"]) == ("completed", 20, 0)
    assert [r["index"] for r in body["results"]] == list(range(20))


# --------------------------------------------------------------------------------------------- delivery cases


@pytest.fixture
def in_process(transactional_db, catalog, fake_upstream, settings) -> Iterator[list[int]]:
    """Items run here, in the test, against the fake upstream; task messages are captured, not sent."""
    settings.PROVIDER_BASE_URLS = dict(fake_upstream.base_urls)
    settings.ROUTER_FANOUT_LEASE_S = 60
    catalog_invalidate()
    fake_upstream.clear()
    sent: list[int] = []
    with mock.patch.object(batch_lanes, "_publish", sent.extend):
        yield sent
    fanout.worker_loop_close()
    catalog_invalidate()


def _one_item(user_id: int) -> BatchItem:
    batch = batches.batch_create(user_id=user_id, requests=[{"messages": _messages(0)}], model="gpt-4o-mini")
    return batch.items.get()


def test_a_message_delivered_again_after_the_item_finished_does_nothing(in_process, alice, fake_upstream):
    item = _one_item(alice.pk)
    batch_lanes.batch_item_run(item_id=item.pk)
    batch_lanes.batch_item_run(item_id=item.pk)
    item.refresh_from_db()
    assert item.status == "success" and item.attempts == 1
    assert len(fake_upstream.requests()) == 1
    assert GatewayRequest.objects.filter(batch_id=item.batch_id).count() == 1


def test_a_duplicate_message_while_the_item_runs_elsewhere_does_nothing(in_process, alice, fake_upstream):
    item = _one_item(alice.pk)
    BatchItem.objects.filter(pk=item.pk).update(
        status="running", attempts=1, lease_expires_at=timezone.now() + timedelta(seconds=60)
    )
    batch_lanes.batch_item_run(item_id=item.pk)
    item.refresh_from_db()
    assert item.status == "running"
    assert fake_upstream.requests() == []


def test_a_worker_that_died_after_logging_is_only_marked_done_when_redelivered(
    in_process, alice, fake_upstream
):
    item = _one_item(alice.pk)
    batch_lanes.batch_item_run(item_id=item.pk)
    # As if the worker died between the log (and charge) and marking the item: the row says running.
    BatchItem.objects.filter(pk=item.pk).update(
        status="running", request=None, lease_expires_at=timezone.now()
    )
    spent = Budget.objects.get(user=alice).spent_usd

    batch_lanes.batch_item_run(item_id=item.pk)

    item.refresh_from_db()
    assert item.status == "success" and item.request_id is not None
    assert len(fake_upstream.requests()) == 1  # not called again
    assert Budget.objects.get(user=alice).spent_usd == spent  # not charged again


def test_a_worker_that_died_before_logging_left_a_hold_the_redelivery_reuses_and_settles(in_process, alice):
    item = _one_item(alice.pk)
    # As if a worker reserved, called the provider and died: the item is running, its hold still open.
    budget_reserve(
        user_id=alice.pk, amount=Decimal("0.001"), idempotency_key=f"batch_item:{item.pk}:gpt-4o-mini"
    )
    BatchItem.objects.filter(pk=item.pk).update(status="running", attempts=1, lease_expires_at=timezone.now())

    batch_lanes.batch_item_run(item_id=item.pk)

    item.refresh_from_db()
    assert item.status == "success" and item.attempts == 2
    assert Reservation.objects.get(user=alice).status == "settled"  # the same hold, not a second one
    budget = Budget.objects.get(user=alice)
    assert budget.reserved_usd == 0
    assert budget.spent_usd == GatewayRequest.objects.get(pk=item.request_id).total_cost_usd


def test_two_runs_racing_on_one_item_log_and_charge_it_once(in_process, alice, fake_upstream):
    item = _one_item(alice.pk)
    work = batch_lanes._work_for(BatchItem.objects.select_related("batch").get(pk=item.pk))
    fanout.run_in_worker_loop(fanout._perform(work))  # the other run: it logged and charged first
    cache.clear()  # so this run calls the provider too, rather than answering from the cache
    spent = Budget.objects.get(user=alice).spent_usd
    real_logged = fanout._logged
    checks: list[str] = []

    def blind_first(request_id: str) -> dict | None:
        checks.append(request_id)  # this run's first look happened before the other run logged
        return None if len(checks) == 1 else real_logged(request_id)

    with mock.patch.object(fanout, "_logged", blind_first):
        batch_lanes.batch_item_run(item_id=item.pk)

    item.refresh_from_db()
    assert item.status == "success" and item.request_id == work.request_id
    assert len(fake_upstream.requests()) == 2  # both called the provider...
    assert GatewayRequest.objects.filter(batch_id=item.batch_id).count() == 1  # ...one row
    assert Budget.objects.get(user=alice).spent_usd == spent  # ...and one charge
    assert Budget.objects.get(user=alice).reserved_usd == 0


def test_an_item_delivered_too_often_is_given_up_as_an_error(in_process, alice, settings):
    settings.ROUTER_FANOUT_MAX_ATTEMPTS = 2
    item = _one_item(alice.pk)
    BatchItem.objects.filter(pk=item.pk).update(status="running", attempts=2, lease_expires_at=timezone.now())
    batch_lanes.batch_item_run(item_id=item.pk)
    item.refresh_from_db()
    assert item.status == "error" and item.error_code == "gave_up"
    assert item.batch.status == "completed"


def test_resume_requeues_items_of_dead_workers_and_fills_free_slots(in_process, alice, settings):
    settings.ROUTER_BATCH_CONCURRENCY = 2
    batch = batches.batch_create(
        user_id=alice.pk, requests=[{"messages": _messages(i)} for i in range(4)], model="gpt-4o-mini"
    )
    first, second, third, _ = batch.items.order_by("index")
    in_process.clear()
    BatchItem.objects.filter(pk=first.pk).update(
        status="running", attempts=1, lease_expires_at=timezone.now()
    )
    BatchItem.objects.filter(pk=second.pk).update(status="success")

    assert batch_lanes.batches_resume() == {"requeued": 1, "queued": 1, "completed": 0}
    assert sorted(in_process) == [first.pk, third.pk]
    assert BatchItem.objects.get(pk=first.pk).status == "queued"
