"""Users (custom from the first migration) and API keys stored only as SHA-256 hashes."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class User(AbstractUser):
    cache_group = models.CharField(
        max_length=64,
        blank=True,
        help_text="Users in the same group share response-cache entries (admin-controlled). Empty = private.",
    )


class ApiKey(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    prefix = models.CharField(max_length=16, help_text="The first characters of the key, for display only.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    rate_limit_rpm = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute for this key; empty = the global default."
    )
    rate_limit_tpm = models.PositiveIntegerField(
        null=True, blank=True, help_text="Estimated tokens per minute for this key; empty = unlimited."
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"
