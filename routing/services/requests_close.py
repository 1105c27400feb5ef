"""Closing what a dead process left open: journaled outcomes replayed, stale pending rows charged at the hold."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from budgets.models import Reservation
from budgets.services import budget_release, budget_settle
from routing import metrics
from routing.models import GatewayRequest
from routing.pipeline.writes import journal_replay

logger = logging.getLogger(__name__)
# How far back an expired hold's row is still looked for (the job runs every few minutes; this covers a
# beat that was down for days).
EXPIRED_LOOKBACK = timedelta(days=7)


def requests_close_stale(*, now: datetime | None = None) -> dict[str, int]:
    """First the journal (an outcome it holds is the real usage), then every row still pending after its hold
    expired: charged at the largest hold it took (a true upper bound of what the call cost) and marked
    unsettled, so spending and the log agree and nobody's money goes unrecorded."""
    replayed = journal_replay()
    moment = now or timezone.now()
    cutoff = moment - timedelta(seconds=settings.ROUTER_RESERVATION_TTL_S + settings.ROUTER_PENDING_GRACE_S)
    closed = 0
    # A hold its owner still renews (a long stream) keeps its row open, whatever the row's age.
    renewed = Reservation.objects.filter(status=Reservation.Status.OPEN, expires_at__gte=moment).values(
        "request_id"
    )
    stale = GatewayRequest.objects.filter(
        pk__in=_lapsed_holds(moment), status=GatewayRequest.Status.PENDING, created_at__lt=cutoff
    ).exclude(pk__in=renewed)
    for request_id in stale.values_list("pk", flat=True):
        closed += _close(request_id, moment)
    return {"replayed": replayed, "closed": closed}


def _lapsed_holds(moment: datetime) -> QuerySet[Reservation, Any]:
    """The requests of holds nobody renewed: still open past their expiry, or expired by
    budgets.reservations_expire within EXPIRED_LOOKBACK (both on the reservations' (status, expiry) index).

    Pending rows are found through their holds because the log has no index on `status` (it would make every
    outcome's UPDATE rewrite all the row's indexes, see routing/migrations/0007). A provider is only called
    once a hold is granted, so a row left pending without one had no call and costs nothing.
    """
    lapsed = Q(status=Reservation.Status.OPEN, expires_at__lt=moment) | Q(
        status=Reservation.Status.EXPIRED, expires_at__gte=moment - EXPIRED_LOOKBACK
    )
    return Reservation.objects.filter(lapsed).values("request_id")


def _close(request_id: str, moment: datetime) -> int:
    with transaction.atomic():
        row = GatewayRequest.objects.select_for_update().filter(pk=request_id).first()
        if row is None or row.status != GatewayRequest.Status.PENDING:
            return 0  # its outcome arrived since the listing
        holds = list(Reservation.objects.filter(request_id=request_id).order_by("-amount_usd", "pk"))
        charged = holds[0].amount_usd if holds else row.total_cost_usd
        if holds:
            budget_settle(reservation_id=holds[0].pk, actual_cost=charged)
        for other in holds[1:]:
            budget_release(reservation_id=other.pk)
        GatewayRequest.objects.filter(pk=request_id).update(
            status=GatewayRequest.Status.UNSETTLED,
            completed_at=moment,
            input_cost_usd=charged,
            total_cost_usd=charged,
            error_code="unsettled",
            error_message="The process serving this call stopped before its outcome was recorded; "
            "charged at the hold, the most the call could have cost.",
        )
    metrics.UNSETTLED.inc()
    logger.warning(
        "pending request closed as unsettled", extra={"request_id": request_id, "charged": str(charged)}
    )
    return 1
