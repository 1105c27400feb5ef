"""Reserve, settle and release as single statements on PostgreSQL, for the gateway's per-request path: one
round trip each, whatever the number of windows that apply.

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

# The start of each window's current period, as budgets.periods computes it.
_CURRENT_START = """CASE b.period WHEN 'daily' THEN date_trunc('day', now(), 'UTC')
                         WHEN 'weekly' THEN date_trunc('week', now(), 'UTC')
                         WHEN 'monthly' THEN date_trunc('month', now(), 'UTC') END"""

# Holds `amount` in every window that applies (budgets.rules.windows_for), all or none, in one statement:
# the windows are locked in id order and read as locked (FOR UPDATE gives the latest committed amounts), a
# window whose period ended counts from zero (and is rolled over by the hold), and each limit is checked as
# budgets.rules.WindowState.fits checks it. No reservation comes back when one does not fit, when the user's
# own window doesn't exist yet, or when a team key's holder left the team: budgets.services takes those.
RESERVE_BODY = f"""
WITH key AS (
    SELECT k.team_id,
           (k.team_id IS NULL OR EXISTS (SELECT 1 FROM accounts_teammembership m
                                          WHERE m.team_id = k.team_id AND m.user_id = p_user_id)) AS member
      FROM accounts_apikey k WHERE k.id = p_key_id
), windows AS (
    SELECT b.id, b.scope, b.own_limit_usd, b.admin_limit_usd, b.reserved_usd,
           {_CURRENT_START} AS current_start,
           b.period <> 'lifetime' AND b.period_start < {_CURRENT_START} AS stale,
           b.spent_usd, b.reset_offset_usd
      FROM budgets_budget b
     WHERE (b.scope = 'key' AND b.api_key_id = p_key_id)
        OR (b.scope = 'team' AND b.team_id = (SELECT team_id FROM key))
        OR (b.scope = 'user' AND b.user_id = p_user_id AND (SELECT team_id FROM key) IS NULL)
     ORDER BY b.id
       FOR UPDATE OF b
), counted AS (
    SELECT id, scope, own_limit_usd, admin_limit_usd, reserved_usd, current_start, stale,
           CASE WHEN stale THEN 0 ELSE spent_usd END AS spent,
           CASE WHEN stale THEN 0 ELSE spent_usd - reset_offset_usd END AS own_spent
      FROM windows
), allowed AS (
    SELECT 1 AS ok
     WHERE COALESCE((SELECT member FROM key), TRUE)
       AND ((SELECT team_id FROM key) IS NOT NULL
            OR EXISTS (SELECT 1 FROM counted WHERE scope = 'user'))
       AND NOT EXISTS (
           SELECT 1 FROM counted
            WHERE (own_limit_usd IS NOT NULL AND own_limit_usd < own_spent + reserved_usd + p_amount)
               OR (admin_limit_usd IS NOT NULL AND admin_limit_usd < spent + reserved_usd + p_amount))
), held AS (
    UPDATE budgets_budget b
       SET reserved_usd = b.reserved_usd + p_amount,
           spent_usd = CASE WHEN c.stale THEN 0 ELSE b.spent_usd END,
           reset_offset_usd = CASE WHEN c.stale THEN 0 ELSE b.reset_offset_usd END,
           period_start = CASE WHEN c.stale THEN c.current_start ELSE b.period_start END,
           updated_at = now()
      FROM counted c
     WHERE b.id = c.id AND EXISTS (SELECT 1 FROM allowed)
 RETURNING b.id
), reservation AS (
    INSERT INTO budgets_reservation (user_id, amount_usd, status, request_id, created_at, expires_at)
    SELECT p_user_id, p_amount, 'open', p_request_id, now(), now() + make_interval(secs => p_ttl)
     WHERE EXISTS (SELECT 1 FROM allowed)
 RETURNING id
), holds AS (
    INSERT INTO budgets_reservationhold (reservation_id, budget_id)
    SELECT reservation.id, held.id FROM reservation, held
)
SELECT id FROM reservation
"""  # noqa: S608 - built from constants only

# Charges the actual cost once to the windows the reservation holds (not to one that rolled over since: the
# cost belongs to the period before), and frees the hold if it is still open (an expired one was freed).
SETTLE_BODY = """
WITH old AS (
    SELECT id, status, amount_usd, created_at FROM budgets_reservation WHERE id = p_id FOR UPDATE
), changed AS (
    UPDATE budgets_reservation r
       SET status = 'settled', settled_usd = p_cost, closed_at = now()
      FROM old
     WHERE r.id = old.id AND old.status <> 'settled'
 RETURNING old.id, old.created_at, CASE WHEN old.status = 'open' THEN old.amount_usd ELSE 0 END AS held
), windows AS (
    SELECT b.id FROM budgets_budget b JOIN budgets_reservationhold h ON h.budget_id = b.id
     WHERE h.reservation_id = (SELECT id FROM changed) ORDER BY b.id FOR UPDATE OF b
)
UPDATE budgets_budget b
   SET spent_usd = b.spent_usd + CASE WHEN b.period_start <= changed.created_at THEN p_cost ELSE 0 END,
       reserved_usd = b.reserved_usd - changed.held
  FROM changed, windows
 WHERE b.id = windows.id
"""

RELEASE_BODY = """
WITH old AS (
    SELECT id, amount_usd FROM budgets_reservation WHERE id = p_id AND status = 'open' FOR UPDATE
), changed AS (
    UPDATE budgets_reservation r
       SET status = 'released', settled_usd = 0, closed_at = now()
      FROM old
     WHERE r.id = old.id
 RETURNING old.id, old.amount_usd
), windows AS (
    SELECT b.id FROM budgets_budget b JOIN budgets_reservationhold h ON h.budget_id = b.id
     WHERE h.reservation_id = (SELECT id FROM changed) ORDER BY b.id FOR UPDATE OF b
)
UPDATE budgets_budget b
   SET reserved_usd = b.reserved_usd - changed.amount_usd
  FROM changed, windows
 WHERE b.id = windows.id
"""


# The three run as PL/pgSQL functions (budgets migration 0004 creates them from FUNCTIONS_DDL): PostgreSQL keeps
# each one's plan per connection, where the bare statements were planned afresh on every request (the reserve
# alone took 1.2-1.6 ms to plan, longer than to run). Their texts above stay the one definition: a test checks
# that the database's functions are these, so a change here without a migration fails.
FUNCTIONS = {
    "router_budget_reserve": (
        "p_user_id bigint, p_key_id bigint, p_amount numeric, p_request_id text, p_ttl integer",
        "SETOF bigint",
        f"RETURN QUERY {RESERVE_BODY.strip()};",
    ),
    "router_budget_settle": ("p_id bigint, p_cost numeric", "void", f"{SETTLE_BODY.strip()};"),
    "router_budget_release": ("p_id bigint", "void", f"{RELEASE_BODY.strip()};"),
}


def function_ddl(name: str) -> str:
    arguments, returns, body = FUNCTIONS[name]
    return (
        f"CREATE OR REPLACE FUNCTION {name}({arguments}) RETURNS {returns} LANGUAGE plpgsql AS $router$\n"
        f"BEGIN\n{body}\nEND\n$router$"
    )


RESERVE_SQL = (
    "SELECT * FROM router_budget_reserve(%(user_id)s, %(key_id)s, %(amount)s, %(request_id)s, %(ttl)s)"
)
SETTLE_SQL = "SELECT router_budget_settle(%(id)s, %(cost)s)"
RELEASE_SQL = "SELECT router_budget_release(%(id)s)"


async def abudget_reserve(
    *,
    user_id: int,
    api_key_id: int | None = None,
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
            "key_id": api_key_id,
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
        budget_reserve,
        user_id=user_id,
        api_key_id=api_key_id,
        amount=amount,
        request_id=request_id,
        idempotency_key=idempotency_key,
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
