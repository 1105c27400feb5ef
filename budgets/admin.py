"""Admin for budgets (the admin limit a user cannot raise) and the reservation ledger (read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from budgets.models import Budget, Reservation


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "period",
        "spent_usd",
        "reserved_usd",
        "own_limit_usd",
        "admin_limit_usd",
        "period_start",
    )
    list_filter = ("period",)
    search_fields = ("user__username",)
    readonly_fields = ("spent_usd", "reserved_usd", "updated_at")
    fields = (
        "user",
        "admin_limit_usd",
        "own_limit_usd",
        "period",
        "period_start",
        "spent_usd",
        "reserved_usd",
        "updated_at",
    )


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
