"""Budget windows' calendar: each period starts at 00:00 UTC of its day, of its ISO week (Monday) or of the
first of its month, the way PostgreSQL's date_trunc(…, 'UTC') in budgets.hotpath counts them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DAILY, WEEKLY, MONTHLY, LIFETIME = "daily", "weekly", "monthly", "lifetime"
PERIODS = (DAILY, WEEKLY, MONTHLY, LIFETIME)


def period_start(period: str, moment: datetime) -> datetime | None:
    """The start of the period `moment` falls in; None for lifetime (it never starts over)."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == DAILY:
        return day
    if period == WEEKLY:
        return day - timedelta(days=day.weekday())
    if period == MONTHLY:
        return day.replace(day=1)
    return None


def period_end(period: str, start: datetime) -> datetime | None:
    """When the period that began at `start` resets; None for lifetime."""
    if period == DAILY:
        return start + timedelta(days=1)
    if period == WEEKLY:
        return start + timedelta(days=7)
    if period == MONTHLY:
        return (start.replace(day=1) + timedelta(days=32)).replace(day=1)
    return None


def month_start(moment: datetime) -> datetime:
    start = period_start(MONTHLY, moment)
    assert start is not None
    return start


def next_month_start(moment: datetime) -> datetime:
    end = period_end(MONTHLY, month_start(moment))
    assert end is not None
    return end
