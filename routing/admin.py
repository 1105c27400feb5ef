"""The request log and Idempotency-Key records in admin: read-only, never added to or deleted from."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from routing.models import Attempt, GatewayRequest, IdempotencyRecord


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    fields = ("index", "model", "provider", "status", "status_code", "error", "latency_ms")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(GatewayRequest)
class GatewayRequestAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "user",
        "model",
        "provider",
        "status",
        "cached",
        "total_cost_usd",
        "latency_ms",
    )
    list_filter = ("status", "provider", "cached", "selection_mode", "created_at", "model")
    search_fields = ("id", "model", "user__username", "client_request_id")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    show_full_result_count = False
    inlines = [AttemptInline]


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("key", "api_key", "state", "status_code", "request_id", "created_at", "expires_at")
    list_filter = ("state", "created_at")
    search_fields = ("key", "request_id")
    exclude = ("body",)  # bytes, possibly megabytes of a stream
    list_select_related = ("api_key",)
    show_full_result_count = False
