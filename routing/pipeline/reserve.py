"""Reserving: each attempt holds its worst-case cost against the budget before its provider is called."""

from __future__ import annotations

from decimal import Decimal

from budgets.hotpath import abudget_reserve
from budgets.selectors import budget_remaining
from config.api_errors import BudgetExceeded
from config.db import run_orm
from providers.catalog import CatalogModel
from providers.cost_bounds import max_output_tokens_affordable, worst_case_cost
from routing.access import access_expect_note
from routing.pipeline.lease import lease_take
from routing.pipeline.record import pending_row
from routing.pipeline.run import ZERO, CompletionRun
from routing.pipeline.writes import pending_statement


def worst_case(run: CompletionRun, model: CatalogModel, max_tokens: int | None) -> Decimal:
    assert model.rates is not None
    output = max_tokens or model.max_output_tokens
    return worst_case_cost(model.rates, run.held_prompt(model), output)


async def reserve(run: CompletionRun, model: CatalogModel, *, first: bool) -> None:
    """Holds the attempt's worst case; with budget_policy "fit" the first model may get a smaller max_tokens."""
    amount = worst_case(run, model, run.max_tokens_override or run.inp.max_tokens)
    key = f"{run.inp.idempotency_key}:{model.model_id}" if run.inp.idempotency_key else None
    # The request's row goes in with its first hold, in the same round trip: no call without its record.
    record = [] if run.reservations or run.pending_written else [pending_statement(pending_row(run, model))]
    run.pending_written = True
    access_expect_note()  # a row exists: its outcome will be recorded, and the access line waits for it
    try:
        reservation_id = await abudget_reserve(
            user_id=run.caller.user_id,
            api_key_id=run.caller.api_key_id,
            amount=amount,
            request_id=run.request_id,
            idempotency_key=key,
            with_statements=record,
        )
    except BudgetExceeded:
        if not (first and run.inp.budget_policy == "fit"):
            raise
        left = await run_orm(budget_remaining, user_id=run.caller.user_id, api_key_id=run.caller.api_key_id)
        assert model.rates is not None
        remaining = left if left is not None else ZERO
        affordable = max_output_tokens_affordable(
            model.rates, run.held_prompt(model), remaining, limit=model.max_output_tokens
        )
        if affordable < 1:
            raise
        run.max_tokens_override = min(affordable, run.inp.max_tokens or affordable)
        run.budget_fitted = True
        amount = worst_case(run, model, run.max_tokens_override)
        reservation_id = await abudget_reserve(
            user_id=run.caller.user_id,
            api_key_id=run.caller.api_key_id,
            amount=amount,
            request_id=run.request_id,
            idempotency_key=key,
        )
    run.reservations[model.model_id] = reservation_id
    lease_take(reservation_id)
