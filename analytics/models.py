"""Rollup tables over the request log (filled by analytics.services, read by analytics.selectors)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


def money_sum() -> models.DecimalField:
    """Sums over a day of one user's requests can outgrow the log's NUMERIC(20, 10); same scale, wider."""
    return models.DecimalField(max_digits=30, decimal_places=10, default=0)


def door_field() -> models.CharField:
    """The request log's door (routing.pipeline.types.DOORS); rows rolled up before doors existed are chat."""
    return models.CharField(max_length=16, default="chat", db_default="chat")


def api_key_field() -> models.ForeignKey:
    """The request log's key (None: a call without one, such as the dashboard's compare, or a deleted key); its
    team is the key's, so a team filter is the same join on the log and on the rollups."""
    return models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )


class DailyUsage(models.Model):
    """One row per user, UTC day, door, API key, provider and model: the additive numbers of that day's
    requests (for the day of the watermark, of its requests before the watermark)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    door = door_field()
    api_key = api_key_field()
    provider = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=128, blank=True)
    requests = models.PositiveIntegerField(default=0)
    successes = models.PositiveIntegerField(default=0)
    cache_hits = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost_usd = money_sum()
    cache_savings_usd = money_sum()
    latency_sum_ms = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "date", "door", "api_key", "provider", "model"], name="daily_usage_unique"
            )
        ]
        indexes = [models.Index(fields=["date"], name="daily_usage_date")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.date} {self.door} key {self.api_key_id} {self.provider}/{self.model}"


class DailyLatency(models.Model):
    """A latency histogram per user, UTC day, door and API key: request counts per logarithmic bucket (see
    analytics.usage)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    door = door_field()
    api_key = api_key_field()
    bucket = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "date", "door", "api_key", "bucket"], name="daily_latency_unique"
            )
        ]
        indexes = [models.Index(fields=["date"], name="daily_latency_date")]

    def __str__(self) -> str:
        return (
            f"{self.user_id} {self.date} {self.door} key {self.api_key_id} bucket {self.bucket}: {self.count}"
        )


class JobState(models.Model):
    """Watermarks of the periodic jobs: the rollups cover the log before rolled_until; retention has cleared
    text before cleared_before."""

    name = models.CharField(primary_key=True, max_length=32)
    rolled_until = models.DateTimeField(null=True, blank=True)
    cleared_before = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    ROLLUPS = "rollups"
    RETENTION = "retention"

    def __str__(self) -> str:
        return self.name
