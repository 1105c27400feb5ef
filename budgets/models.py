"""A budget per user, and the ledger of reservations each spending call takes and settles."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

MONEY: dict[str, Any] = {"max_digits": 20, "decimal_places": 10}


class Budget(models.Model):
    class Period(models.TextChoices):
        MONTHLY = "monthly"
        LIFETIME = "lifetime"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="budget")
    own_limit_usd = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Set by the user; empty = none."
    )
    admin_limit_usd = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        help_text="Set by an admin; the user cannot go above it. Empty = none.",
    )
    period = models.CharField(max_length=16, choices=Period.choices, default=Period.MONTHLY)
    period_start = models.DateTimeField(default=timezone.now)
    spent_usd = models.DecimalField(**MONEY, default=0)  # the period's real spending
    # A reset frees the user's own limit only: it remembers the spending so far instead of zeroing it, so an
    # admin limit keeps counting all of spent_usd and the own limit counts spent_usd - reset_offset_usd.
    reset_offset_usd = models.DecimalField(
        **MONEY, default=0, help_text="The period's spending before the user's last reset."
    )
    reserved_usd = models.DecimalField(**MONEY, default=0)
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
        ]

    def __str__(self) -> str:
        return f"Budget of {self.user}"


class Reservation(models.Model):
    """The ledger: one row per spending attempt, from reserve to settle (or release, or expiry)."""

    class Status(models.TextChoices):
        OPEN = "open"
        SETTLED = "settled"
        RELEASED = "released"
        EXPIRED = "expired"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reservations")
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
