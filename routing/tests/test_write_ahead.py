"""Write-ahead rows and the outage journal: no call without its row, and every outcome charged exactly once."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone

from budgets.models import Budget, Reservation
from budgets.services import budget_reserve, reservations_expire
from routing.models import Attempt, GatewayRequest
from routing.pipeline import journal
from routing.pipeline.journal import JournalEntry, journal_entries
from routing.pipeline.writes import journal_replay, write_outcome_sync
from routing.services.requests_close import requests_close_stale
from routing.tests.live import LiveGateway, live_database_url

HELLO = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def journal_dir(tmp_path, settings):
    settings.ROUTER_JOURNAL_DIR = tmp_path / "journal"
    return settings.ROUTER_JOURNAL_DIR


def _pending(user, request_id: str, amount: Decimal) -> Reservation:
    GatewayRequest.objects.create(
        id=request_id, user=user, model="gpt-4o-mini", status="pending", http_status=0
    )
    return budget_reserve(user_id=user.pk, amount=amount, request_id=request_id)


def _entry(user, request_id: str, reservation: Reservation, cost: Decimal) -> JournalEntry:
    row = GatewayRequest(
        id=request_id,
        user_id=user.pk,
        model="gpt-4o-mini",
        provider="openai",
        status="success",
        http_status=200,
        input_tokens=10,
        output_tokens=5,
        total_tokens=15,
        input_cost_usd=cost,
        total_cost_usd=cost,
        response_text="Paris.",
        created_at=timezone.now(),
    )
    attempt = Attempt(
        request_id=request_id, index=0, model="gpt-4o-mini", provider="openai", status="success"
    )
    return JournalEntry(row=row, attempts=[attempt], settle=[(reservation.pk, cost)], release=[])


def _append(entry: JournalEntry) -> None:
    journal._append(journal.encode(entry))


@pytest.mark.django_db(transaction=True)
def test_a_journal_replayed_twice_charges_once(alice, journal_dir):
    reservation = _pending(alice, "req_twice", Decimal("0.01"))
    entry = _entry(alice, "req_twice", reservation, Decimal("0.004"))
    _append(entry)
    assert journal_replay() == 1
    _append(entry)  # the same outcome journaled again (a retry after a timeout that did commit)
    assert journal_replay() == 1
    row = GatewayRequest.objects.get(pk="req_twice")
    assert row.status == "success" and row.total_cost_usd == Decimal("0.004")
    assert Attempt.objects.filter(request_id="req_twice").count() == 1
    budget = Budget.objects.get(user=alice)
    assert budget.spent_usd == Decimal("0.004") and budget.reserved_usd == 0
    assert not list(journal_dir.glob("outcomes-*"))


@pytest.mark.django_db(transaction=True)
def test_a_line_torn_by_a_crash_is_skipped_and_the_others_replayed(alice, journal_dir):
    first = _pending(alice, "req_first", Decimal("0.01"))
    second = _pending(alice, "req_second", Decimal("0.01"))
    _append(_entry(alice, "req_first", first, Decimal("0.002")))
    _append(_entry(alice, "req_second", second, Decimal("0.003")))
    path = next(journal_dir.glob("outcomes-*"))
    whole = journal.encode(_entry(alice, "req_third", first, Decimal("0.5")))
    with path.open("ab") as handle:
        handle.write(whole[: len(whole) // 2])  # the process died mid-append
    assert journal_entries(path)[1] == 1
    assert journal_replay() == 2
    assert set(GatewayRequest.objects.filter(status="success").values_list("pk", flat=True)) == {
        "req_first",
        "req_second",
    }
    assert Budget.objects.get(user=alice).spent_usd == Decimal("0.005")


@pytest.mark.django_db(transaction=True)
def test_an_outcome_after_the_row_was_closed_changes_nothing(alice, journal_dir):
    reservation = _pending(alice, "req_late", Decimal("0.01"))
    later = timezone.now() + timedelta(hours=2)
    assert requests_close_stale(now=later) == {"replayed": 0, "closed": 1}
    write_outcome_sync(_entry(alice, "req_late", reservation, Decimal("0.004")))
    row = GatewayRequest.objects.get(pk="req_late")
    assert row.status == "unsettled" and row.total_cost_usd == Decimal("0.01")  # charged at the hold
    assert Budget.objects.get(user=alice).spent_usd == Decimal("0.01")


@pytest.mark.django_db(transaction=True)
def test_a_row_whose_hold_the_expiry_job_released_first_is_still_closed(alice, journal_dir):
    """The job finds pending rows through their holds, expired ones included (the log has no status index)."""
    _pending(alice, "req_expired", Decimal("0.01"))
    later = timezone.now() + timedelta(hours=2)
    assert reservations_expire(now=later) == 1
    assert requests_close_stale(now=later) == {"replayed": 0, "closed": 1}
    row = GatewayRequest.objects.get(pk="req_expired")
    assert row.status == "unsettled" and row.total_cost_usd == Decimal("0.01")  # charged at the hold
    assert Budget.objects.get(user=alice).spent_usd == Decimal("0.01")
    assert requests_close_stale(now=later + timedelta(days=1)) == {"replayed": 0, "closed": 0}


@pytest.mark.django_db(transaction=True)
def test_the_closing_job_takes_the_journals_usage_before_the_hold(alice, journal_dir):
    reservation = _pending(alice, "req_journaled", Decimal("0.01"))
    _append(_entry(alice, "req_journaled", reservation, Decimal("0.004")))
    later = timezone.now() + timedelta(hours=2)
    assert requests_close_stale(now=later) == {"replayed": 1, "closed": 0}
    assert GatewayRequest.objects.get(pk="req_journaled").total_cost_usd == Decimal("0.004")
    assert Budget.objects.get(user=alice).spent_usd == Decimal("0.004")


@pytest.mark.e2e
def test_a_web_process_killed_mid_call_leaves_a_row_the_job_closes(
    transactional_db, catalog, fake_upstream, alice, alice_key, django_db_blocker, journal_dir
):
    fake_upstream.clear()
    fake_upstream.control(model="gpt-4o-mini", delay_ms=3000)
    with django_db_blocker.unblock():
        url = live_database_url()
    gateway = LiveGateway(
        database_url=url, upstream=fake_upstream, env={"ROUTER_JOURNAL_DIR": str(journal_dir)}
    )
    with gateway:

        def call() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server dies under it
                httpx.post(
                    gateway.url + "/v1/chat/completions",
                    headers={"Authorization": f"Bearer {alice_key}"},
                    json={"model": "gpt-4o-mini", "messages": HELLO},
                    timeout=10,
                )

        thread = threading.Thread(target=call)
        thread.start()
        deadline = time.monotonic() + 10
        while not fake_upstream.requests() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake_upstream.requests(), "the provider was called"
        assert gateway.process is not None
        os.kill(gateway.process.pid, signal.SIGKILL)
        thread.join(15)
    row = GatewayRequest.objects.get(user=alice)
    assert row.status == "pending"  # the call had its row before the provider saw it
    hold = Reservation.objects.get(request_id=row.pk)
    assert requests_close_stale(now=timezone.now() + timedelta(hours=2))["closed"] == 1
    row.refresh_from_db()
    assert row.status == "unsettled" and row.total_cost_usd == hold.amount_usd > 0
    budget = Budget.objects.get(user=alice)
    assert budget.reserved_usd == 0 and budget.spent_usd == row.total_cost_usd
    fake_upstream.clear()
