"""Admin for budget windows (the admin limit an owner cannot raise), their alerts and the reservation ledger
(read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from budgets.models import Budget, BudgetAlert, Reservation


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    """A window: its scope's owner (a user, a team or a key), its period and limits; the amounts are the
    ledger's (read-only)."""

    list_display = (
        "id",
        "scope",
        "owner",
        "period",
        "spent_usd",
        "reserved_usd",
        "own_limit_usd",
        "admin_limit_usd",
        "period_start",
    )
    list_filter = ("scope", "period")
    list_select_related = ("user", "team", "api_key")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    search_fields = ("user__username", "team__name", "api_key__name", "api_key__prefix")
    readonly_fields = ("spent_usd", "reset_offset_usd", "reserved_usd", "updated_at")
    autocomplete_fields = ("user", "team", "api_key")
    fieldsets = (
        (None, {"fields": ("scope", "user", "team", "api_key", "period", "period_start")}),
        ("Limits", {"fields": ("admin_limit_usd", "own_limit_usd", "alert_thresholds")}),
        ("Alerts webhook", {"fields": ("webhook_url", "webhook_secret")}),
        ("Ledger", {"fields": ("spent_usd", "reset_offset_usd", "reserved_usd", "updated_at")}),
    )

    @admin.display(description="Owner")
    def owner(self, obj: Budget) -> str:
        return str(obj.user or obj.team or obj.api_key or "—")


@admin.register(BudgetAlert)
class BudgetAlertAdmin(admin.ModelAdmin):
    list_display = (
        "budget",
        "threshold",
        "spent_usd",
        "limit_usd",
        "period_start",
        "created_at",
        "delivered_at",
    )
    list_filter = ("threshold", "budget__scope", "budget__period")
    list_select_related = ("budget__user", "budget__team", "budget__api_key")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "status",
        "amount_usd",
        "settled_usd",
        "request_id",
        "created_at",
        "expires_at",
    )
    list_filter = ("status",)
    search_fields = ("user__username", "request_id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
