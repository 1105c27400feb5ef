"""Admin for users, teams (with their members) and API keys; a new key is shown once, right after it is created."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count
from django.http import HttpRequest

from accounts.authentication import forget_cached_keys
from accounts.models import ApiKey, Team, TeamMembership, User
from accounts.services import api_key_issue, api_key_revoke


@admin.register(User)
class RouterUserAdmin(UserAdmin):
    fieldsets = (*UserAdmin.fieldsets, ("Router", {"fields": ("cache_group",)}))  # type: ignore[misc]
    list_display = ("username", "email", "is_staff", "is_active", "cache_group", "date_joined")


class TeamMembershipInline(admin.TabularInline):
    model = TeamMembership
    extra = 1
    fields = ("user", "joined_at")
    readonly_fields = ("joined_at",)
    autocomplete_fields = ("user",)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "member_count", "rate_limit_rpm", "rate_limit_tpm", "created_at")
    search_fields = ("name", "members__username")
    fields = ("name", "rate_limit_rpm", "rate_limit_tpm", "created_at")
    readonly_fields = ("created_at",)
    inlines = [TeamMembershipInline]

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description="Members", ordering="member_count")
    def member_count(self, obj: Any) -> int:
        return int(obj.member_count)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        if formset.model is TeamMembership and (formset.deleted_objects or formset.changed_objects):
            # As accounts.services.team_member_remove: a team key of someone who left stops working at once.
            forget_cached_keys()


class ApiKeyAdminForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("user", "team", "name", "expires_at", "rate_limit_rpm", "rate_limit_tpm")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        user, team = data.get("user"), data.get("team")
        if user is not None and team is not None and not team.memberships.filter(user=user).exists():
            # Such a key would never authenticate: a team key works only while its holder is a member.
            self.add_error("team", f"{user} is not a member of {team}.")
        return data


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyAdminForm
    list_display = (
        "name",
        "prefix",
        "user",
        "team",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("revoked_at", "team")
    search_fields = ("name", "prefix", "user__username", "team__name")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    fields = (
        "user",
        "team",
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
            team=obj.team,
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
