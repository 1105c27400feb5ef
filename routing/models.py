"""The request log (one row per client request, one Attempt per provider call), comparisons and batches."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

MONEY: dict[str, Any] = {"max_digits": 20, "decimal_places": 10}


class Comparison(models.Model):
    id = models.CharField(primary_key=True, max_length=40)  # cmp_…
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="comparisons")
    models_requested = models.JSONField(default=list)
    params = models.JSONField(default=dict)
    messages = models.JSONField(default=list)
    status = models.CharField(max_length=16, default="running")  # running | completed
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cache_group = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="comparison_user_created")]

    def __str__(self) -> str:
        return self.id


class BatchJob(models.Model):
    id = models.CharField(primary_key=True, max_length=40)  # batch_…
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="batches")
    status = models.CharField(max_length=16, default="queued")  # queued | running | completed
    total_requests = models.PositiveIntegerField(default=0)
    params = models.JSONField(default=dict)
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cache_group = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="batch_user_created")]

    def __str__(self) -> str:
        return self.id


class FanoutRow(models.Model):
    """One gateway request run by a Celery task for a parent (a compared model, a batch item).

    pending → queued (a task message exists) → running (claimed under a lease) → success | error.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        QUEUED = "queued"
        RUNNING = "running"
        SUCCESS = "success"
        ERROR = "error"

    index = models.PositiveIntegerField()
    status = models.CharField(max_length=16, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Deliveries that claimed this row.")
    queued_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


OPEN_STATUSES = (FanoutRow.Status.PENDING, FanoutRow.Status.QUEUED, FanoutRow.Status.RUNNING)


class ComparisonResult(FanoutRow):
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="results")
    model = models.CharField(max_length=128)
    provider = models.CharField(max_length=32, blank=True)
    request = models.OneToOneField(
        "GatewayRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="comparison_result"
    )

    class Meta:
        ordering = ["comparison", "index"]
        constraints = [
            models.UniqueConstraint(fields=["comparison", "index"], name="comparison_result_unique_index")
        ]

    def __str__(self) -> str:
        return f"{self.comparison_id}[{self.index}] {self.model}"


class BatchItem(FanoutRow):
    batch = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="items")
    client_id = models.CharField(max_length=200)
    payload = models.JSONField(default=dict)
    lane = models.CharField(
        max_length=32, blank=True, help_text="The provider whose concurrency bound applies."
    )
    request = models.OneToOneField(
        "GatewayRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="batch_item"
    )

    class Meta:
        ordering = ["batch", "index"]
        constraints = [models.UniqueConstraint(fields=["batch", "index"], name="batch_item_unique_index")]
        indexes = [
            models.Index(
                fields=["lane", "status"],
                name="batch_item_open_by_lane",
                condition=models.Q(status__in=["pending", "queued", "running"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.batch_id}[{self.index}]"


class GatewayRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"  # written before the provider is called; the outcome completes it
        SUCCESS = "success"
        ERROR = "error"
        UNSETTLED = "unsettled"  # its process died mid-call: closed by the periodic job, charged at the hold

    id = models.CharField(primary_key=True, max_length=40)  # req_…
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gateway_requests"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    client_request_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    requested_model = models.CharField(max_length=128, blank=True)
    model = models.CharField(
        max_length=128, blank=True, help_text="The model that answered (or was last tried)."
    )
    provider = models.CharField(max_length=32, blank=True)
    catalog_model = models.ForeignKey(
        "providers.Model", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    price = models.ForeignKey(
        "providers.ModelPrice",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The price row this request was charged at.",
    )

    door = models.CharField(
        max_length=16,
        default="chat",
        db_default="chat",
        help_text="The client dialect: chat, messages, responses, embeddings.",
    )
    messages = models.JSONField(default=list, blank=True)
    prompt_text = models.TextField(blank=True)
    response_text = models.TextField(blank=True)
    tool_calls = models.JSONField(null=True, blank=True, help_text="The answer's tool calls (OpenAI shape).")
    usage_anomalies = models.JSONField(
        default=list,
        db_default=[],
        blank=True,
        help_text="Provider usage counts that were out of bounds (charged at the bound).",
    )
    stored = models.BooleanField(
        default=False,
        db_default=False,
        help_text="/v1/responses with store: GET and previous_response_id may read it.",
    )
    finish_reason = models.CharField(max_length=32, blank=True)
    params = models.JSONField(default=dict, blank=True)
    stream = models.BooleanField(default=False)

    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Prompt tokens written to the vendor's cache (priced above input)."
    )
    cache_write_1h_tokens = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text="The part of the cache writes kept for an hour (priced higher still).",
    )
    reasoning_tokens = models.PositiveIntegerField(default=0)
    input_cost_usd = models.DecimalField(**MONEY, default=0)
    output_cost_usd = models.DecimalField(**MONEY, default=0)
    total_cost_usd = models.DecimalField(**MONEY, default=0)
    estimated_cost_usd = models.DecimalField(**MONEY, default=0)
    cache_savings_usd = models.DecimalField(
        **MONEY, default=0, help_text="For cache hits: what the original paid."
    )

    latency_ms = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUCCESS)
    http_status = models.PositiveSmallIntegerField(default=200)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    cached = models.BooleanField(default=False)
    budget_fitted = models.BooleanField(default=False)
    selection_mode = models.CharField(max_length=24, default="manual")
    models_considered = models.PositiveIntegerField(default=1)
    candidates = models.JSONField(default=list, blank=True)

    comparison = models.ForeignKey(
        Comparison, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )
    batch = models.ForeignKey(
        BatchJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Nothing on `status`: the outcome changes it, and an index on a column the outcome changes makes
            # its UPDATE write every index again (the prompt's trigrams with it: ~8 ms for a 64 KiB prompt)
            # where a HOT update writes none. Pending rows are found through their holds instead.
            models.Index(fields=["user", "-created_at"], name="request_user_created"),
            models.Index(fields=["user", "model", "-created_at"], name="request_user_model"),
            models.Index(fields=["user", "provider", "-created_at"], name="request_user_provider"),
            models.Index(fields=["user", "door", "-created_at"], name="request_user_door"),
            models.Index(fields=["created_at"], name="request_created"),
        ]

    def __str__(self) -> str:
        return self.id


class Attempt(models.Model):
    request = models.ForeignKey(GatewayRequest, on_delete=models.CASCADE, related_name="attempts")
    index = models.PositiveSmallIntegerField()
    model = models.CharField(max_length=128)
    provider = models.CharField(max_length=32)
    status = models.CharField(max_length=16)  # success | error
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    retryable = models.BooleanField(default=False)
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["request", "index"]
        constraints = [models.UniqueConstraint(fields=["request", "index"], name="attempt_unique_index")]

    def __str__(self) -> str:
        return f"{self.request_id} #{self.index} {self.model}: {self.status}"


class IdempotencyRecord(models.Model):
    """The first outcome of a spending POST sent with an Idempotency-Key, kept 24 hours for its retries.

    in_progress while the first request runs (the unique key is the claim), done once its response is stored.
    """

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        DONE = "done"

    api_key = models.ForeignKey("accounts.ApiKey", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255, help_text="The Idempotency-Key header's value.")
    fingerprint = models.CharField(max_length=64, help_text="sha256 of method, path and body.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField(default=b"", blank=True)
    replayable = models.BooleanField(
        default=True, help_text="False: the outcome was too large to keep (a long stream); retries get 409."
    )
    request_id = models.CharField(max_length=40, help_text="The gateway request id of the first request.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_unique_key_per_api_key")
        ]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_expires")]

    def __str__(self) -> str:
        return f"{self.api_key_id}:{self.key} ({self.state})"
