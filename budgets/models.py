"""Budget windows (user, team and key scopes), and the ledger of the reservations each spending call holds."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

MONEY: dict[str, Any] = {"max_digits": 20, "decimal_places": 10}


def default_thresholds() -> list[int]:
    return [80, 100]


class Budget(models.Model):
    """A budget window: a limit on one scope's spending in one calendar period (UTC), resetting by itself.

    A scope is a user (their personal keys), a team (its team keys) or one API key; each may have one window
    per period. A window's limits are the owner's own (a user on their user and key windows; staff on a
    team's) and the admin's, which the owner can neither raise nor reset. A window without limits still
    counts its scope's spending (each user has a monthly one, created on first use).
    """

    class Scope(models.TextChoices):
        USER = "user"
        TEAM = "team"
        KEY = "key"

    class Period(models.TextChoices):
        DAILY = "daily"
        WEEKLY = "weekly"
        MONTHLY = "monthly"
        LIFETIME = "lifetime"

    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.USER)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="budgets"
    )
    team = models.ForeignKey(
        "accounts.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="budgets"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", on_delete=models.CASCADE, null=True, blank=True, related_name="budgets"
    )
    own_limit_usd = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Set by the owner; empty = none."
    )
    admin_limit_usd = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        help_text="Set by an admin; the owner cannot go above it or reset it. Empty = none.",
    )
    period = models.CharField(max_length=16, choices=Period.choices, default=Period.MONTHLY)
    period_start = models.DateTimeField(default=timezone.now)
    spent_usd = models.DecimalField(**MONEY, default=0)  # the period's real spending
    # A reset frees the owner's own limit only: it remembers the spending so far instead of zeroing it, so an
    # admin limit keeps counting all of spent_usd and the own limit counts spent_usd - reset_offset_usd.
    reset_offset_usd = models.DecimalField(
        **MONEY, default=0, help_text="The period's spending before the owner's last reset."
    )
    reserved_usd = models.DecimalField(**MONEY, default=0)
    alert_thresholds = models.JSONField(
        default=default_thresholds, blank=True, help_text="Percentages of the limit that raise an alert."
    )
    webhook_url = models.URLField(blank=True, help_text="Alerts are POSTed here, signed (empty = none).")
    webhook_secret = models.CharField(max_length=128, blank=True, help_text="HMAC-SHA256 key of the alerts.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(spent_usd__gte=0), name="budget_spent_not_negative"),
            models.CheckConstraint(
                condition=models.Q(reserved_usd__gte=0), name="budget_reserved_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(reset_offset_usd__gte=0, reset_offset_usd__lte=models.F("spent_usd")),
                name="budget_reset_offset_within_spent",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(scope="user", user__isnull=False, team__isnull=True, api_key__isnull=True)
                    | models.Q(scope="team", user__isnull=True, team__isnull=False, api_key__isnull=True)
                    | models.Q(scope="key", user__isnull=True, team__isnull=True, api_key__isnull=False)
                ),
                name="budget_window_has_its_scope_owner",
            ),
            models.UniqueConstraint(
                fields=["user", "period"], condition=models.Q(scope="user"), name="budget_user_window_once"
            ),
            models.UniqueConstraint(
                fields=["team", "period"], condition=models.Q(scope="team"), name="budget_team_window_once"
            ),
            models.UniqueConstraint(
                fields=["api_key", "period"], condition=models.Q(scope="key"), name="budget_key_window_once"
            ),
        ]

    def __str__(self) -> str:
        owner = self.user or self.team or self.api_key
        return f"{self.period} window of {self.scope} {owner}"

    @property
    def scope_id(self) -> int:
        owner = {"user": self.user_id, "team": self.team_id, "key": self.api_key_id}[self.scope]
        assert owner is not None
        return owner


class Reservation(models.Model):
    """The ledger: one row per spending attempt, from reserve to settle (or release, or expiry)."""

    class Status(models.TextChoices):
        OPEN = "open"
        SETTLED = "settled"
        RELEASED = "released"
        EXPIRED = "expired"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reservations")
    windows = models.ManyToManyField(
        Budget, through="ReservationHold", related_name="reservations", help_text="The windows it holds."
    )
    amount_usd = models.DecimalField(**MONEY)
    settled_usd = models.DecimalField(**MONEY, null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    request_id = models.CharField(max_length=40, blank=True, db_index=True)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "expires_at"], name="reservation_open_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.status} ${self.amount_usd} for {self.user_id}"


class ReservationHold(models.Model):
    """One window a reservation holds its amount in (every window that applied when it was made)."""

    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="holds")
    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="holds")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reservation", "budget"], name="reservation_hold_once")
        ]

    def __str__(self) -> str:
        return f"reservation {self.reservation_id} in window {self.budget_id}"


class BudgetAlert(models.Model):
    """A threshold a window crossed, once per period (the unique constraint is the "once")."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    threshold = models.PositiveSmallIntegerField()
    period_start = models.DateTimeField()
    spent_usd = models.DecimalField(**MONEY)
    limit_usd = models.DecimalField(**MONEY)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivery_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "threshold", "period_start"], name="budget_alert_once_per_period"
            )
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.threshold}% of {self.budget}"
