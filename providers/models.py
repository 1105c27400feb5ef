"""Catalog tables: providers, their models, and append-only effective-dated prices."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone

from providers.pricing import RATE_FIELDS, Rates

MONEY: dict[str, Any] = {"max_digits": 20, "decimal_places": 10}


class Provider(models.Model):
    name = models.SlugField(max_length=32, unique=True, help_text="openai, anthropic, google or deepseek")
    display_name = models.CharField(max_length=64)
    base_url = models.CharField(
        max_length=300,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="The vendor SDK's base URL convention. The *_BASE_URL environment variable overrides it.",
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.display_name or self.name


class Model(models.Model):
    class Kind(models.TextChoices):
        CHAT = "chat"
        EMBEDDING = "embedding"

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="models")
    model_id = models.CharField(max_length=128, help_text="The exact id the vendor's API takes.")
    display_name = models.CharField(max_length=128)
    aliases = models.JSONField(default=list, blank=True, help_text="Other names clients may use.")
    kind = models.CharField(
        max_length=16,
        choices=Kind.choices,
        default=Kind.CHAT,
        db_default=Kind.CHAT,
        help_text="chat serves the chat doors; embedding serves /v1/embeddings.",
    )
    context_window = models.PositiveIntegerField(
        help_text="Tokens the model takes: the whole prompt for chat, each input for an embedding model."
    )
    max_output_tokens = models.PositiveIntegerField(help_text="0 for an embedding model.")
    supports_tools = models.BooleanField(default=False)
    supports_vision = models.BooleanField(default=False)
    supports_json = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    deprecation_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider__name", "model_id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "model_id"], name="model_unique_per_provider")
        ]

    def __str__(self) -> str:
        return self.model_id


class ModelPrice(models.Model):
    """Append-only: a price change is a new row from its effective time on; old rows stay for old requests."""

    model = models.ForeignKey(Model, on_delete=models.PROTECT, related_name="prices")
    input_per_1m = models.DecimalField(**MONEY)
    cached_input_per_1m = models.DecimalField(**MONEY, null=True, blank=True)
    output_per_1m = models.DecimalField(**MONEY)
    cache_write_5m_per_1m = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        help_text="Prompt-cache writes with the 5-minute TTL; empty: input rate.",
    )
    cache_write_1h_per_1m = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        help_text="Prompt-cache writes with the 1-hour TTL; empty: 5-minute rate.",
    )
    long_context_threshold = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Prompt tokens above which the long-context rates apply to the whole request; empty: none.",
    )
    long_input_per_1m = models.DecimalField(**MONEY, null=True, blank=True)
    long_output_per_1m = models.DecimalField(**MONEY, null=True, blank=True)
    long_cached_input_per_1m = models.DecimalField(**MONEY, null=True, blank=True)
    effective_from = models.DateTimeField(default=timezone.now, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=32, default="admin", help_text="seed, admin or import")

    class Meta:
        ordering = ["model", "-effective_from", "-id"]
        indexes = [models.Index(fields=["model", "-effective_from"], name="price_model_effective")]
        constraints = [
            # Long-context rates without a threshold would never apply: refuse the row instead.
            models.CheckConstraint(
                condition=models.Q(long_context_threshold__isnull=False)
                | models.Q(
                    long_input_per_1m__isnull=True,
                    long_output_per_1m__isnull=True,
                    long_cached_input_per_1m__isnull=True,
                ),
                name="price_long_rates_need_threshold",
            )
        ]

    def __str__(self) -> str:
        return f"{self.model.model_id}: ${self.input_per_1m}/${self.output_per_1m} per 1M from {self.effective_from:%Y-%m-%d}"

    @property
    def rates(self) -> Rates:
        return Rates(**{name: getattr(self, name) for name in RATE_FIELDS})

    def same_rates(self, rates: Rates) -> bool:
        """Whether this row already charges exactly these rates (Decimal equality: 2.5 == 2.5000000000)."""
        return self.rates == rates
