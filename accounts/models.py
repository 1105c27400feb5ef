"""Users (custom from the first migration), teams and their members, and API keys stored only as SHA-256 hashes."""

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


class Team(models.Model):
    """A group that spends together: its keys' spending counts against the team's budget windows."""

    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(User, through="TeamMembership", related_name="teams")
    rate_limit_rpm = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute for all the team's keys together; empty = none."
    )
    rate_limit_tpm = models.PositiveIntegerField(
        null=True, blank=True, help_text="Estimated tokens per minute for all the team's keys; empty = none."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TeamMembership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="team_memberships")
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="team_member_once")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class ApiKey(models.Model):
    user = models.ForeignKey(
        User,
        on_delete=models.CASCADE,
        related_name="api_keys",
        help_text="Who holds the key; for a team key, a member (the key stops working if they leave the team).",
    )
    team = models.ForeignKey(
        Team,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="api_keys",
        help_text="A team key: its spending belongs to the team. Empty = a personal key.",
    )
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
        null=True,
        blank=True,
        help_text="Estimated tokens per minute for this key; empty = the global default.",
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
