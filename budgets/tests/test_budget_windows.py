"""Budget windows at every scope: team and key windows hold under concurrency on two processes, a window rolls
over at 00:00 UTC without losing what was in flight, and a member who leaves a team stops spending at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from accounts.services import api_key_issue, team_create, team_member_remove
from budgets.hotpath import RESERVE_SQL
from budgets.models import Budget, Reservation
from budgets.periods import period_start
from budgets.services import budget_reserve, budget_settle
from config.api_errors import PermissionDenied
from routing.models import GatewayRequest

D = Decimal
MODEL = "gpt-4o-mini"
REQUESTS = 200
FITS = 20
MAX_TOKENS = 16


def _body(index: int) -> dict[str, Any]:
    text = f"Say hello, request number {index:03d}, in a few well chosen words"
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": MAX_TOKENS,
        "cache": False,
    }


async def _fire(urls: list[str], keys: list[str], count: int = REQUESTS) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count * 2, max_keepalive_connections=count * 2)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(index: int) -> httpx.Response:
            headers = {"Authorization": f"Bearer {keys[index % len(keys)]}"}
            return await client.post(
                urls[index % len(urls)] + "/v1/chat/completions", headers=headers, json=_body(index)
            )

        return await asyncio.gather(*(one(i) for i in range(count)))


def _worst_case(url: str, key: str) -> Decimal:
    """The gateway's own hold for the largest of these requests, read off a 402 against a zero window."""
    refused = httpx.post(
        url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json=_body(REQUESTS - 1),
        timeout=30,
    )
    assert refused.status_code == 402, refused.text
    return Decimal(str(refused.json()["error"]["estimated_cost_usd"]))


@pytest.mark.e2e
@pytest.mark.parametrize("scope", ["team", "key"])
def test_200_concurrent_requests_on_two_processes_never_overrun_a_team_or_a_key_window(
    two_gateways, fake_upstream, alice, bob, scope
):
    team = team_create(name="research", members=[alice, bob])
    first, first_raw = api_key_issue(user=alice, name="agent-1", team=team)
    _, second_raw = api_key_issue(user=bob, name="agent-2", team=team)
    # The window under test, and a roomy one at the other scope: both apply, all or none.
    team_window = Budget.objects.create(scope="team", team=team, period="daily", period_start=_today())
    key_window = Budget.objects.create(scope="key", api_key=first, period="monthly", period_start=_month())
    tight = team_window if scope == "team" else key_window
    roomy = key_window if scope == "team" else team_window
    Budget.objects.filter(pk=tight.pk).update(admin_limit_usd=D(0))
    worst = _worst_case(two_gateways[0].url, first_raw)
    limit = worst * FITS
    Budget.objects.filter(pk=tight.pk).update(admin_limit_usd=limit)
    Budget.objects.filter(pk=roomy.pk).update(admin_limit_usd=limit * 100)
    Reservation.objects.all().delete()
    fake_upstream.control(model=MODEL, prompt_counting="words", delay_ms=200, answer="word " * 100)
    keys = [first_raw] if scope == "key" else [first_raw, second_raw]

    responses = asyncio.run(_fire([g.url for g in two_gateways], keys))

    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] + statuses[402] == REQUESTS, statuses
    assert statuses[200] >= FITS - 1
    tight.refresh_from_db()
    roomy.refresh_from_db()
    assert tight.spent_usd <= limit, f"spent {tight.spent_usd} of {limit}"
    logged = GatewayRequest.objects.aggregate(total=Sum("total_cost_usd"))["total"]
    counted = GatewayRequest.objects.filter(api_key=first).aggregate(total=Sum("total_cost_usd"))["total"]
    assert tight.spent_usd == (logged if scope == "team" else counted)
    assert roomy.spent_usd == (counted if scope == "team" else logged)  # the other window counted it too
    assert tight.reserved_usd == 0 and roomy.reserved_usd == 0
    assert len(fake_upstream.requests(model=MODEL)) == statuses[200]  # a 402 never reached the provider
    assert not Reservation.objects.filter(status=Reservation.Status.OPEN).exists()
    # A team key's spending is the team's: the members' own windows never saw it.
    assert not Budget.objects.filter(scope="user", spent_usd__gt=0).exists()
    error = next(r for r in responses if r.status_code == 402).json()["error"]
    assert error["window"]["scope"] == scope and error["window"]["period"] == tight.period
    assert error["window"]["resets_at"] is not None and "resets at" in error["message"]


def _today() -> Any:
    return period_start("daily", timezone.now())


def _month() -> Any:
    return period_start("monthly", timezone.now())


def _sql_reserve(*, user_id: int, key_id: int | None, amount: Decimal, request_id: str) -> int | None:
    params = {"amount": amount, "user_id": user_id, "key_id": key_id, "request_id": request_id, "ttl": 600}
    with connection.cursor() as cursor:
        cursor.execute(RESERVE_SQL, params)
        rows = cursor.fetchall()
    return rows[0][0] if rows else None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["sql", "orm"])
def test_a_daily_window_rolls_over_at_midnight_and_what_was_in_flight_settles_into_the_day_before(
    alice, path
):
    team = team_create(name="night-shift", members=[alice])
    key, _ = api_key_issue(user=alice, team=team)
    yesterday = _today() - timedelta(days=1)
    window = Budget.objects.create(
        scope="team", team=team, period="daily", period_start=yesterday, admin_limit_usd=D("1.00")
    )
    # Yesterday, 23:59: 0.60 spent and a call of 0.30 in flight.
    in_flight = budget_reserve(user_id=alice.pk, api_key_id=key.pk, amount=D("0.30"), request_id="req_late")
    Reservation.objects.filter(pk=in_flight.pk).update(created_at=_today() - timedelta(seconds=1))
    Budget.objects.filter(pk=window.pk).update(spent_usd=D("0.60"), period_start=yesterday)

    # 00:00 has passed: the first hold of the new day starts the window from zero (the in-flight hold stays).
    if path == "sql":
        held = _sql_reserve(user_id=alice.pk, key_id=key.pk, amount=D("0.50"), request_id="req_early")
    else:
        held = budget_reserve(
            user_id=alice.pk, api_key_id=key.pk, amount=D("0.50"), request_id="req_early"
        ).pk
    assert held is not None  # 0.60 + 0.30 + 0.50 would not fit yesterday's window
    window.refresh_from_db()
    assert window.period_start == _today()
    assert window.spent_usd == 0 and window.reserved_usd == D("0.80")

    budget_settle(reservation_id=in_flight.pk, actual_cost=D("0.25"))  # yesterday's call ends after midnight
    budget_settle(reservation_id=held, actual_cost=D("0.40"))
    window.refresh_from_db()
    assert window.reserved_usd == 0
    assert window.spent_usd == D("0.40")  # only today's call: the late one belongs to yesterday


@pytest.mark.django_db(transaction=True)
def test_a_member_removed_from_a_team_can_no_longer_spend_with_its_key_at_once(alice, bob):
    team = team_create(name="platform", members=[alice, bob])
    key, raw = api_key_issue(user=alice, team=team)
    assert _sql_reserve(user_id=alice.pk, key_id=key.pk, amount=D("0.01"), request_id="req_1") is not None
    team_member_remove(team=team, user=alice)
    # The hot path's statement checks membership itself, so a key cached in another process can't spend.
    assert _sql_reserve(user_id=alice.pk, key_id=key.pk, amount=D("0.01"), request_id="req_2") is None
    with pytest.raises(PermissionDenied):
        budget_reserve(user_id=alice.pk, api_key_id=key.pk, amount=D("0.01"), request_id="req_3")
    # And the key no longer authenticates.
    from django.test import Client

    response = Client().get("/v1/budget", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 401
