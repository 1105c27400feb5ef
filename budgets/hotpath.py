"""Reserve, settle and release as single statements on PostgreSQL, for the gateway's per-request path.

Each is one conditional statement, so it is as atomic as the ORM services in budgets.services (which stay
the reference and handle everything unusual: a budget not created yet, a monthly period to roll over, a
refusal's details, idempotency keys, SQLite). Settle and release are statements for the caller to
run in the same transaction as the request log row.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from budgets.models import Reservation
from budgets.services import budget_reserve
from config.db import execute_statements, get_pool, run_orm, run_script

# Holds only when the budget exists, its monthly period is current and the amount fits both limits: the
# user's own counting the spending since their last reset, the admin's all of the period's (as
# budgets.services._fits counts them).
RESERVE_SQL = """
WITH held AS (
    UPDATE budgets_budget
       SET reserved_usd = reserved_usd + %(amount)s, updated_at = now()
     WHERE user_id = %(user_id)s
       AND (period <> 'monthly' OR period_start >= date_trunc('month', now(), 'UTC'))
       AND (own_limit_usd IS NULL
            OR own_limit_usd >= spent_usd - reset_offset_usd + reserved_usd + %(amount)s)
       AND (admin_limit_usd IS NULL OR admin_limit_usd >= spent_usd + reserved_usd + %(amount)s)
 RETURNING user_id
)
INSERT INTO budgets_reservation (user_id, amount_usd, status, request_id, created_at, expires_at)
SELECT user_id, %(amount)s, 'open', %(request_id)s, now(), now() + make_interval(secs => %(ttl)s)
  FROM held
RETURNING id
"""

# Charges the actual cost once; frees the hold if it is still open (an expired one was freed already).
SETTLE_SQL = """
WITH old AS (
    SELECT id, user_id, status, amount_usd FROM budgets_reservation WHERE id = %(id)s FOR UPDATE
), changed AS (
    UPDATE budgets_reservation r
       SET status = 'settled', settled_usd = %(cost)s, closed_at = now()
      FROM old
     WHERE r.id = old.id AND old.status <> 'settled'
 RETURNING old.user_id, CASE WHEN old.status = 'open' THEN old.amount_usd ELSE 0 END AS held
)
UPDATE budgets_budget b
   SET spent_usd = b.spent_usd + %(cost)s, reserved_usd = b.reserved_usd - changed.held
  FROM changed
 WHERE b.user_id = changed.user_id
"""

RELEASE_SQL = """
WITH old AS (
    SELECT id, user_id, amount_usd FROM budgets_reservation WHERE id = %(id)s AND status = 'open' FOR UPDATE
), changed AS (
    UPDATE budgets_reservation r
       SET status = 'released', settled_usd = 0, closed_at = now()
      FROM old
     WHERE r.id = old.id
 RETURNING old.user_id, old.amount_usd
)
UPDATE budgets_budget b
   SET reserved_usd = b.reserved_usd - changed.amount_usd
  FROM changed
 WHERE b.user_id = changed.user_id
"""


async def abudget_reserve(
    *,
    user_id: int,
    amount: Decimal,
    request_id: str,
    idempotency_key: str | None = None,
    with_statements: list[tuple[str, Any]] | None = None,
) -> int:
    """Returns the reservation id, or raises BudgetExceeded (402) like budgets.services.budget_reserve.

    `with_statements` (the caller's own writes, e.g. its request row) are committed first, in the same round
    trip as the hold on PostgreSQL, whether or not the hold is granted.
    """
    pool = await get_pool()
    before = list(with_statements or [])
    if pool is not None and idempotency_key is None:
        params: dict[str, Any] = {
            "amount": amount,
            "user_id": user_id,
            "request_id": request_id,
            "ttl": settings.ROUTER_RESERVATION_TTL_S,
        }
        # Not flushed to disk per request (1.3 ms): a database crash in the next fraction of a second loses the
        # hold (which only frees room) and the pending row (which the outcome's write then inserts afresh).
        rows = await run_script(
            [("SET LOCAL synchronous_commit TO OFF", None), *before, (RESERVE_SQL, params)]
        )
        if rows:
            return int(rows[0][0])
        before = []  # committed with the refused hold; the ORM path below handles the refusal
    if before:
        await (run_script(before) if pool is not None else run_orm(execute_statements, before))
    reservation = await run_orm(
        budget_reserve, user_id=user_id, amount=amount, request_id=request_id, idempotency_key=idempotency_key
    )
    return reservation.pk


def settle_statement(*, reservation_id: int, actual_cost: Decimal) -> tuple[str, dict[str, Any]]:
    """The settle step, to run in the caller's transaction (config.db.run_script) with its log row."""
    return SETTLE_SQL, {"id": reservation_id, "cost": actual_cost}


def release_statement(*, reservation_id: int) -> tuple[str, dict[str, Any]]:
    return RELEASE_SQL, {"id": reservation_id}


RENEW_SQL = """
UPDATE budgets_reservation
   SET expires_at = now() + make_interval(secs => %(ttl)s)
 WHERE id = ANY(%(ids)s) AND status = 'open'
"""


async def abudget_renew(*, reservation_ids: list[int], ttl_s: int) -> None:
    """Extends the open holds of calls still in flight (their owner is alive); one statement."""
    pool = await get_pool()
    if pool is not None:
        renew = (RENEW_SQL, {"ids": reservation_ids, "ttl": ttl_s})
        await run_script([("SET LOCAL synchronous_commit TO OFF", None), renew])
        return
    await run_orm(_renew, reservation_ids, ttl_s)


def _renew(reservation_ids: list[int], ttl_s: int) -> None:
    Reservation.objects.filter(pk__in=reservation_ids, status=Reservation.Status.OPEN).update(
        expires_at=timezone.now() + timedelta(seconds=ttl_s)
    )
