"""The hot writes' contract: one set of cases, run on PostgreSQL (the one-round-trip SQL the gateway sends
there) and on SQLite (`make run`'s embedded default, through Django's connection), must leave the same rows,
holds and budgets.

PostgreSQL is the test database (in this process); SQLite is a real file database in a subprocess with the
embedded settings (routing/tests/sqlite_support.py), which imports this module and runs the same cases.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from accounts.services import user_get_or_create
from budgets.hotpath import abudget_reserve
from budgets.limits import budget_limit_set
from budgets.models import Budget, Reservation
from budgets.services import budget_get_or_create
from config.api_errors import BudgetExceeded
from config.db import close_pools, get_pool, run_orm
from routing.models import Attempt, GatewayRequest
from routing.pipeline.journal import JournalEntry, journal_append, journal_pending
from routing.pipeline.writes import journal_replay, pending_statement, write_outcome, write_outcome_sync
from routing.services.requests_close import requests_close_stale
from routing.tests.sqlite_support import EmbeddedSite

HOLD = Decimal("0.0125")
FALLBACK_HOLD = Decimal("0.0075")
COST = Decimal("0.0042")
# Worst cases the gateway really reserves (the last is gpt-4o-mini's for a short prompt), held at once.
OVERLAPPING = {
    "req_c_overlap_a": HOLD,
    "req_c_overlap_b": FALLBACK_HOLD,
    "req_c_overlap_c": Decimal("0.0098325"),
}
HELLO = [{"role": "user", "content": "What is the capital of France?"}]
Case = Callable[[int], Awaitable[dict[str, Any]]]


# ------------------------------------------------------------------ the writes, as the pipeline makes them


def _pending_row(
    user_id: int, request_id: str, *, model: str = "gpt-4o-mini", age_s: int = 0
) -> GatewayRequest:
    """What record.pending_row writes before a provider is called."""
    return GatewayRequest(
        id=request_id,
        user_id=user_id,
        created_at=timezone.now() - timedelta(seconds=age_s),
        requested_model=model,
        model=model,
        provider="openai",
        door="chat",
        messages=HELLO,
        prompt_text=HELLO[0]["content"],
        params={"temperature": 0.2},
        estimated_cost_usd=HOLD,
        status=GatewayRequest.Status.PENDING,
        http_status=0,
        selection_mode="manual",
        models_considered=2,
        candidates=["gpt-4o-mini", "claude-sonnet-4.5"],
    )


async def _reserve(
    user_id: int, request_id: str, amount: Decimal = HOLD, *, with_row: GatewayRequest | None = None
) -> int:
    statements = [pending_statement(with_row)] if with_row is not None else []
    return await abudget_reserve(
        user_id=user_id, amount=amount, request_id=request_id, with_statements=statements
    )


def _outcome(
    user_id: int,
    request_id: str,
    *,
    settle: list[tuple[int, Decimal]],
    release: list[int],
    models: tuple[str, ...] = ("gpt-4o-mini",),
    success: bool = True,
    pending: bool = True,
) -> JournalEntry:
    """What record.log hands to write_outcome: the completed row, its attempts, the holds to settle or free."""
    cost = sum((c for _, c in settle), Decimal(0))
    now = timezone.now()
    row = GatewayRequest(
        id=request_id,
        user_id=user_id,
        created_at=now - timedelta(milliseconds=300),
        completed_at=now,
        requested_model=models[0],
        model=models[-1],
        provider="anthropic" if models[-1].startswith("claude") else "openai",
        door="chat",
        messages=HELLO,
        prompt_text=HELLO[0]["content"],
        response_text="Paris." if success else "",
        finish_reason="stop" if success else "",
        params={"temperature": 0.2},
        input_tokens=12 if success else 0,
        output_tokens=3 if success else 0,
        total_tokens=15 if success else 0,
        input_cost_usd=cost,
        total_cost_usd=cost,
        estimated_cost_usd=HOLD,
        latency_ms=300,
        status=GatewayRequest.Status.SUCCESS if success else GatewayRequest.Status.ERROR,
        http_status=200 if success else 502,
        error_code="" if success else "upstream_error",
        error_message="" if success else "Every candidate failed",
        selection_mode="manual",
        models_considered=2,
        candidates=["gpt-4o-mini", "claude-sonnet-4.5"],
    )
    attempts = [
        Attempt(
            request_id=request_id,
            index=index,
            model=model,
            provider=row.provider,
            status="success" if success and index == len(models) - 1 else "error",
            status_code=200 if success and index == len(models) - 1 else 503,
            latency_ms=100,
            created_at=now,
        )
        for index, model in enumerate(models)
    ]
    return JournalEntry(row=row, attempts=attempts, settle=settle, release=release, pending=pending)


# ------------------------------------------------------------------ the cases (each returns what it observed)


async def reserve_with_a_pending_row(user_id: int) -> dict[str, Any]:
    await run_orm(budget_get_or_create, user_id=user_id)
    await _reserve(user_id, "req_c_pending", with_row=_pending_row(user_id, "req_c_pending"))
    return {}


async def the_first_reservation_creates_the_budget(user_id: int) -> dict[str, Any]:
    await _reserve(user_id, "req_c_first", with_row=_pending_row(user_id, "req_c_first"))
    return {}


async def a_refused_reservation_keeps_its_pending_row(user_id: int) -> dict[str, Any]:
    await run_orm(budget_limit_set, user_id=user_id, limit_usd=Decimal("0.005"))
    try:
        await _reserve(user_id, "req_c_refused", with_row=_pending_row(user_id, "req_c_refused"))
    except BudgetExceeded as refused:
        return {"refused": refused.status, "code": refused.code}
    return {"refused": None}


async def an_outcome_completes_the_row_and_settles_the_hold(user_id: int) -> dict[str, Any]:
    await run_orm(budget_get_or_create, user_id=user_id)
    hold = await _reserve(user_id, "req_c_outcome", with_row=_pending_row(user_id, "req_c_outcome"))
    written = await write_outcome(_outcome(user_id, "req_c_outcome", settle=[(hold, COST)], release=[]))
    return {"written": written}


async def the_same_outcome_written_twice_charges_once(user_id: int) -> dict[str, Any]:
    await run_orm(budget_get_or_create, user_id=user_id)
    hold = await _reserve(user_id, "req_c_twice", with_row=_pending_row(user_id, "req_c_twice"))
    entry = _outcome(user_id, "req_c_twice", settle=[(hold, COST)], release=[])
    return {"written": [await write_outcome(entry), await write_outcome(entry)]}


async def an_outcome_for_a_closed_row_changes_nothing(user_id: int) -> dict[str, Any]:
    await run_orm(budget_get_or_create, user_id=user_id)
    # Created long ago, so the closing job takes it (and no fresh row of another case).
    row = _pending_row(user_id, "req_c_closed", age_s=2 * 3600)
    hold = await _reserve(user_id, "req_c_closed", with_row=row)
    # Its process died: nobody renewed the hold, which expired long ago.
    expired = timezone.now() - timedelta(hours=1)
    await run_orm(lambda: Reservation.objects.filter(pk=hold).update(expires_at=expired))
    closed = await run_orm(requests_close_stale)
    written = await write_outcome(_outcome(user_id, "req_c_closed", settle=[(hold, COST)], release=[]))
    return {"closed": closed, "written": written}


async def a_fallback_hold_is_released_and_the_answering_one_settled(user_id: int) -> dict[str, Any]:
    await run_orm(budget_get_or_create, user_id=user_id)
    first = await _reserve(user_id, "req_c_fallback", with_row=_pending_row(user_id, "req_c_fallback"))
    second = await _reserve(user_id, "req_c_fallback", FALLBACK_HOLD)
    held = await run_orm(lambda: str(Budget.objects.get(user_id=user_id).reserved_usd.normalize()))
    entry = _outcome(
        user_id,
        "req_c_fallback",
        settle=[(second, COST)],
        release=[first],
        models=("gpt-4o-mini", "claude-sonnet-4.5"),
    )
    return {"held_before_outcome": held, "written": await write_outcome(entry)}


async def an_error_outcome_frees_its_hold(user_id: int) -> dict[str, Any]:
    await run_orm(budget_get_or_create, user_id=user_id)
    hold = await _reserve(user_id, "req_c_error", with_row=_pending_row(user_id, "req_c_error"))
    entry = _outcome(
        user_id, "req_c_error", settle=[], release=[hold], models=("gpt-4o-mini",), success=False
    )
    return {"written": await write_outcome(entry)}


async def an_outcome_completes_the_pending_row_without_its_prompt(user_id: int) -> dict[str, Any]:
    """The live write sends only the outcome's columns: what the pending row holds stays as written."""
    await run_orm(budget_get_or_create, user_id=user_id)
    hold = await _reserve(user_id, "req_c_short", with_row=_pending_row(user_id, "req_c_short"))
    entry = _outcome(user_id, "req_c_short", settle=[(hold, COST)], release=[])
    entry.row.messages, entry.row.prompt_text = [], ""  # not what the short form sends
    return {"written": await write_outcome(entry)}


async def an_outcome_whose_pending_row_was_lost_is_written_whole(user_id: int) -> dict[str, Any]:
    """The pending write is not flushed to disk: a database crash right after it loses the row (and the hold
    with it, which only frees room). The outcome then writes the whole row."""
    await run_orm(budget_get_or_create, user_id=user_id)
    hold = await _reserve(user_id, "req_c_lost")  # its row never made it
    entry = _outcome(user_id, "req_c_lost", settle=[(hold, COST)], release=[])
    return {"written": await write_outcome(entry)}


async def a_journaled_outcome_is_replayed_once(user_id: int) -> dict[str, Any]:
    await run_orm(budget_get_or_create, user_id=user_id)
    hold = await _reserve(user_id, "req_c_journal", with_row=_pending_row(user_id, "req_c_journal"))
    entry = _outcome(user_id, "req_c_journal", settle=[(hold, COST)], release=[])
    await journal_append(entry)
    waiting = journal_pending()
    first = await run_orm(journal_replay)
    again = await run_orm(journal_replay)
    await journal_append(entry)  # the same outcome journaled twice (a retry after a write that did commit)
    third = await run_orm(journal_replay)
    return {"waiting": waiting, "replayed": [first, again, third], "left": journal_pending()}


async def overlapping_holds_return_the_budget_to_zero(user_id: int) -> dict[str, Any]:
    """Three requests in flight at once (as under any concurrency), then each outcome in turn."""
    await run_orm(budget_get_or_create, user_id=user_id)
    holds = {}
    for request_id, amount in OVERLAPPING.items():
        holds[request_id] = await _reserve(
            user_id, request_id, amount, with_row=_pending_row(user_id, request_id)
        )
    written, journaled_because = [], []
    for request_id, hold in holds.items():
        entry = _outcome(user_id, request_id, settle=[(hold, COST)], release=[])
        written.append(await write_outcome(entry))
        if not written[-1]:  # write_outcome keeps the reason to itself: the same write again shows it
            try:
                await run_orm(write_outcome_sync, entry)
            except Exception as refused:  # noqa: BLE001 (what the test reports)
                journaled_because.append(f"{type(refused).__name__}: {refused}")
    return {"written": written, **({"journaled_because": journaled_because} if journaled_because else {})}


CASES: dict[str, Case] = {
    case.__name__: case
    for case in (
        reserve_with_a_pending_row,
        the_first_reservation_creates_the_budget,
        a_refused_reservation_keeps_its_pending_row,
        an_outcome_completes_the_row_and_settles_the_hold,
        the_same_outcome_written_twice_charges_once,
        an_outcome_for_a_closed_row_changes_nothing,
        a_fallback_hold_is_released_and_the_answering_one_settled,
        an_error_outcome_frees_its_hold,
        an_outcome_completes_the_pending_row_without_its_prompt,
        an_outcome_whose_pending_row_was_lost_is_written_whole,
        a_journaled_outcome_is_replayed_once,
        overlapping_holds_return_the_budget_to_zero,
    )
}


# ------------------------------------------------------------------ running a case, on whichever engine


def _usd(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}"


def _state(user_id: int) -> dict[str, Any]:
    """Everything the hot writes touch for this user, without ids or timestamps (they differ by engine)."""
    rows = []
    for row in GatewayRequest.objects.filter(user_id=user_id).order_by("id"):
        rows.append(
            {
                "id": row.id,
                "status": row.status,
                "http_status": row.http_status,
                "model": row.model,
                "door": row.door,
                "messages": row.messages,
                "params": row.params,
                "candidates": row.candidates,
                "response_text": row.response_text,
                "tokens": [row.input_tokens, row.output_tokens, row.total_tokens],
                "cost": _usd(row.total_cost_usd),
                "input_cost": _usd(row.input_cost_usd),
                "estimated_cost": _usd(row.estimated_cost_usd),
                "error_code": row.error_code,
                "completed": row.completed_at is not None,
                "attempts": [
                    [a.index, a.model, a.status, a.status_code]
                    for a in Attempt.objects.filter(request_id=row.id).order_by("index")
                ],
            }
        )
    holds = [
        {
            "request_id": r.request_id,
            "status": r.status,
            "amount": _usd(r.amount_usd),
            "settled": _usd(r.settled_usd),
            "closed": r.closed_at is not None,
        }
        for r in Reservation.objects.filter(user_id=user_id).order_by("pk")
    ]
    budget = Budget.objects.filter(user_id=user_id).first()
    spending = (
        None if budget is None else {"spent": _usd(budget.spent_usd), "reserved": _usd(budget.reserved_usd)}
    )
    return {"rows": rows, "reservations": holds, "budget": spending}


async def _run(name: str) -> dict[str, Any]:
    try:
        user = await run_orm(user_get_or_create, username=f"contract-{name}"[:150])
        observed = await CASES[name](user.pk)
        return {
            "engine": connection.vendor,
            "one_round_trip": await get_pool() is not None,
            "observed": observed,
            "state": await run_orm(_state, user.pk),
        }
    finally:
        await close_pools()


def run_case(name: str) -> dict[str, Any]:
    return asyncio.run(_run(name))


def run_cases() -> dict[str, Any]:
    """Every case (the SQLite subprocess calls this); a case that raises reports its traceback."""
    results: dict[str, Any] = {}
    for name in CASES:
        try:
            # A journal of its own per case, as each PostgreSQL case gets (a replay takes every file there).
            with override_settings(ROUTER_JOURNAL_DIR=Path(django_settings.ROUTER_JOURNAL_DIR) / name):
                results[name] = run_case(name)
        except Exception:  # noqa: BLE001 (reported to the test, which fails on it)
            results[name] = {"error": traceback.format_exc()}
    return results


RUNNER = (
    "import django, json; django.setup(); "
    "from routing.tests.test_hot_writes_contract import run_cases; "
    "print(json.dumps(run_cases()))"
)


# ------------------------------------------------------------------ what every engine must show


def _only_row(result: dict[str, Any]) -> dict[str, Any]:
    rows = result["state"]["rows"]
    assert len(rows) == 1, rows
    return rows[0]


def _check_reserve_with_a_pending_row(result: dict[str, Any]) -> None:
    row = _only_row(result)
    assert row["status"] == "pending" and row["http_status"] == 0 and not row["completed"]
    assert row["messages"] == HELLO and row["candidates"] == ["gpt-4o-mini", "claude-sonnet-4.5"]
    assert row["attempts"] == []
    assert result["state"]["reservations"] == [
        {
            "request_id": "req_c_pending",
            "status": "open",
            "amount": "0.0125",
            "settled": None,
            "closed": False,
        }
    ]
    assert result["state"]["budget"] == {"spent": "0", "reserved": "0.0125"}


def _check_the_first_reservation_creates_the_budget(result: dict[str, Any]) -> None:
    assert _only_row(result)["status"] == "pending"
    assert [r["status"] for r in result["state"]["reservations"]] == ["open"]
    assert result["state"]["budget"] == {"spent": "0", "reserved": "0.0125"}


def _check_a_refused_reservation_keeps_its_pending_row(result: dict[str, Any]) -> None:
    assert result["observed"] == {"refused": 402, "code": "budget_exceeded"}
    row = _only_row(result)
    assert row["id"] == "req_c_refused" and row["status"] == "pending"
    assert result["state"]["reservations"] == []
    assert result["state"]["budget"] == {"spent": "0", "reserved": "0"}


def _check_an_outcome_completes_the_row_and_settles_the_hold(result: dict[str, Any]) -> None:
    assert result["observed"] == {"written": True}
    row = _only_row(result)
    assert row["status"] == "success" and row["http_status"] == 200 and row["completed"]
    assert row["cost"] == "0.0042" and row["tokens"] == [12, 3, 15] and row["response_text"] == "Paris."
    assert row["attempts"] == [[0, "gpt-4o-mini", "success", 200]]
    assert result["state"]["reservations"] == [
        {
            "request_id": "req_c_outcome",
            "status": "settled",
            "amount": "0.0125",
            "settled": "0.0042",
            "closed": True,
        }
    ]
    assert result["state"]["budget"] == {"spent": "0.0042", "reserved": "0"}


def _check_the_same_outcome_written_twice_charges_once(result: dict[str, Any]) -> None:
    assert result["observed"] == {"written": [True, True]}
    row = _only_row(result)
    assert row["status"] == "success" and row["cost"] == "0.0042" and len(row["attempts"]) == 1
    assert [(r["status"], r["settled"]) for r in result["state"]["reservations"]] == [("settled", "0.0042")]
    assert result["state"]["budget"] == {"spent": "0.0042", "reserved": "0"}


def _check_an_outcome_for_a_closed_row_changes_nothing(result: dict[str, Any]) -> None:
    assert result["observed"] == {"closed": {"replayed": 0, "closed": 1}, "written": True}
    row = _only_row(result)
    assert row["status"] == "unsettled" and row["error_code"] == "unsettled"
    assert row["cost"] == "0.0125" and row["response_text"] == ""  # charged at the hold, the outcome ignored
    # The late outcome's attempts are still recorded (what the process really did); its row and money are not.
    assert row["attempts"] == [[0, "gpt-4o-mini", "success", 200]]
    assert [(r["status"], r["settled"]) for r in result["state"]["reservations"]] == [("settled", "0.0125")]
    assert result["state"]["budget"] == {"spent": "0.0125", "reserved": "0"}


def _check_a_fallback_hold_is_released_and_the_answering_one_settled(result: dict[str, Any]) -> None:
    assert result["observed"] == {"held_before_outcome": "0.02", "written": True}
    row = _only_row(result)
    assert row["status"] == "success" and row["model"] == "claude-sonnet-4.5" and row["cost"] == "0.0042"
    assert row["attempts"] == [[0, "gpt-4o-mini", "error", 503], [1, "claude-sonnet-4.5", "success", 200]]
    assert [(r["status"], r["amount"], r["settled"]) for r in result["state"]["reservations"]] == [
        ("released", "0.0125", "0"),
        ("settled", "0.0075", "0.0042"),
    ]
    assert result["state"]["budget"] == {"spent": "0.0042", "reserved": "0"}


def _check_an_error_outcome_frees_its_hold(result: dict[str, Any]) -> None:
    row = _only_row(result)
    assert row["status"] == "error" and row["http_status"] == 502 and row["cost"] == "0"
    assert [(r["status"], r["settled"]) for r in result["state"]["reservations"]] == [("released", "0")]
    assert result["state"]["budget"] == {"spent": "0", "reserved": "0"}


def _check_an_outcome_completes_the_pending_row_without_its_prompt(result: dict[str, Any]) -> None:
    assert result["observed"] == {"written": True}
    row = _only_row(result)
    assert row["status"] == "success" and row["cost"] == "0.0042" and row["response_text"] == "Paris."
    assert row["messages"] == HELLO  # the pending row's, kept
    assert row["attempts"] == [[0, "gpt-4o-mini", "success", 200]]
    assert [(r["status"], r["settled"]) for r in result["state"]["reservations"]] == [("settled", "0.0042")]
    assert result["state"]["budget"] == {"spent": "0.0042", "reserved": "0"}


def _check_an_outcome_whose_pending_row_was_lost_is_written_whole(result: dict[str, Any]) -> None:
    assert result["observed"] == {"written": True}
    row = _only_row(result)
    assert row["id"] == "req_c_lost" and row["status"] == "success" and row["messages"] == HELLO
    assert row["cost"] == "0.0042" and row["attempts"] == [[0, "gpt-4o-mini", "success", 200]]
    assert [(r["status"], r["settled"]) for r in result["state"]["reservations"]] == [("settled", "0.0042")]
    assert result["state"]["budget"] == {"spent": "0.0042", "reserved": "0"}


def _check_a_journaled_outcome_is_replayed_once(result: dict[str, Any]) -> None:
    assert result["observed"] == {"waiting": 1, "replayed": [1, 0, 1], "left": 0}
    row = _only_row(result)
    assert row["status"] == "success" and row["cost"] == "0.0042" and len(row["attempts"]) == 1
    assert [(r["status"], r["settled"]) for r in result["state"]["reservations"]] == [("settled", "0.0042")]
    assert result["state"]["budget"] == {"spent": "0.0042", "reserved": "0"}


def _check_overlapping_holds_return_the_budget_to_zero(result: dict[str, Any]) -> None:
    assert result["observed"] == {"written": [True, True, True]}, "an outcome went to the journal"
    assert [row["status"] for row in result["state"]["rows"]] == ["success"] * 3
    assert [(r["status"], r["settled"]) for r in result["state"]["reservations"]] == [
        ("settled", "0.0042")
    ] * 3
    assert result["state"]["budget"] == {"spent": "0.0126", "reserved": "0"}


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {name: globals()[f"_check_{name}"] for name in CASES}


# ------------------------------------------------------------------ the tests


@pytest.fixture(scope="module")
def sqlite_results(tmp_path_factory) -> dict[str, Any]:
    """Every case on a real SQLite file, migrated, in the embedded settings (one subprocess)."""
    site = EmbeddedSite(tmp_path_factory.mktemp("embedded-contract")).migrate()
    output = site.run("-c", RUNNER)
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture
def journal_dir(tmp_path, settings):
    settings.ROUTER_JOURNAL_DIR = tmp_path / "journal"
    return settings.ROUTER_JOURNAL_DIR


@pytest.mark.parametrize("case", list(CASES))
def test_postgresql_and_sqlite_leave_the_same_rows_holds_and_budgets(
    case, transactional_db, journal_dir, sqlite_results
):
    on_postgresql = run_case(case)
    on_sqlite = sqlite_results[case]
    assert "error" not in on_sqlite, f"the case raised on SQLite:\n{on_sqlite.get('error')}"
    assert (on_postgresql["engine"], on_postgresql["one_round_trip"]) == ("postgresql", True)
    assert (on_sqlite["engine"], on_sqlite["one_round_trip"]) == ("sqlite", False)
    wrong = []
    for engine, result in (("postgresql", on_postgresql), ("sqlite", on_sqlite)):
        try:
            CHECKS[case](result)
        except AssertionError as failed:
            wrong.append(f"on {engine}: {failed}\n{json.dumps(result['state'])}")
    alike = (on_postgresql["observed"], on_postgresql["state"]) == (on_sqlite["observed"], on_sqlite["state"])
    assert not wrong, "\n".join([*wrong, f"(the two engines {'agree' if alike else 'differ'})"])
    assert on_postgresql["observed"] == on_sqlite["observed"]
    assert on_postgresql["state"] == on_sqlite["state"]
