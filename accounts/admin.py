"""Admin for users and API keys; a new key is shown once, right after it is created."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from accounts.models import ApiKey, User
from accounts.services import api_key_issue, api_key_revoke


@admin.register(User)
class RouterUserAdmin(UserAdmin):
    fieldsets = (*UserAdmin.fieldsets, ("Router", {"fields": ("cache_group",)}))  # type: ignore[misc]
    list_display = ("username", "email", "is_staff", "is_active", "cache_group", "date_joined")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "user", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    fields = (
        "user",
        "name",
        "prefix",
        "expires_at",
        "rate_limit_rpm",
        "rate_limit_tpm",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    actions = ["revoke_keys"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = api_key_issue(
            user=obj.user,
            name=obj.name,
            rate_limit_rpm=obj.rate_limit_rpm,
            rate_limit_tpm=obj.rate_limit_tpm,
        )
        key.expires_at = obj.expires_at
        key.save(update_fields=["expires_at"])
        obj.pk = key.pk
        obj.prefix = key.prefix
        obj.key_hash = key.key_hash
        obj.created_at = key.created_at
        self.message_user(
            request, f"New API key (copy it now, it will not be shown again): {raw}", level=messages.WARNING
        )

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: Any) -> None:
        for key in queryset:
            api_key_revoke(key=key)
