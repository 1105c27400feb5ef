"""Admin for providers, models and prices; editing a model's price adds a new effective-dated row."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from providers.catalog import catalog_invalidate, price_in_force
from providers.models import Model, ModelPrice, Provider
from providers.pricing import RATE_FIELDS
from providers.services import model_price_set

PRICE_FIELD = {"max_digits": 20, "decimal_places": 10, "min_value": Decimal(0)}


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "display_name", "base_url", "active")
    list_editable = ("active",)

    def save_model(self, request: HttpRequest, obj: Provider, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        catalog_invalidate()


class PriceHistoryInline(admin.TabularInline):
    model = ModelPrice
    extra = 0
    can_delete = False
    fields = (
        "effective_from",
        "input_per_1m",
        "cached_input_per_1m",
        "output_per_1m",
        "cache_write_5m_per_1m",
        "cache_write_1h_per_1m",
        "long_context_threshold",
        "long_input_per_1m",
        "long_output_per_1m",
        "long_cached_input_per_1m",
        "source",
        "created_by",
    )
    readonly_fields = fields
    ordering = ("-effective_from", "-id")
    verbose_name_plural = "Price history (read-only; change the price above to add a row)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ModelForm(forms.ModelForm):
    input_per_1m = forms.DecimalField(label="Input $ / 1M tokens", **PRICE_FIELD)  # type: ignore[arg-type]
    cached_input_per_1m = forms.DecimalField(
        label="Cached input $ / 1M tokens",
        required=False,
        **PRICE_FIELD,  # type: ignore[arg-type]
    )
    output_per_1m = forms.DecimalField(label="Output $ / 1M tokens", **PRICE_FIELD)  # type: ignore[arg-type]
    cache_write_5m_per_1m = forms.DecimalField(
        label="Cache write (5 min) $ / 1M tokens",
        required=False,
        help_text="Empty: cache writes pay the input rate. Anthropic: 1.25x input.",
        **PRICE_FIELD,  # type: ignore[arg-type]
    )
    cache_write_1h_per_1m = forms.DecimalField(
        label="Cache write (1 hour) $ / 1M tokens",
        required=False,
        help_text="Empty: the 5-minute write rate. Anthropic: 2x input.",
        **PRICE_FIELD,  # type: ignore[arg-type]
    )
    long_context_threshold = forms.IntegerField(
        label="Long-context threshold (prompt tokens)",
        required=False,
        min_value=0,
        help_text="Above it the long-context rates apply to the whole request. Empty: no long-context tier.",
    )
    long_input_per_1m = forms.DecimalField(
        label="Long-context input $ / 1M tokens",
        required=False,
        **PRICE_FIELD,  # type: ignore[arg-type]
    )
    long_output_per_1m = forms.DecimalField(
        label="Long-context output $ / 1M tokens",
        required=False,
        **PRICE_FIELD,  # type: ignore[arg-type]
    )
    long_cached_input_per_1m = forms.DecimalField(
        label="Long-context cached input $ / 1M tokens",
        required=False,
        **PRICE_FIELD,  # type: ignore[arg-type]
    )

    class Meta:
        model = Model
        fields = [
            "provider",
            "model_id",
            "display_name",
            "kind",
            "aliases",
            "active",
            "deprecation_date",
            "context_window",
            "max_output_tokens",
            "supports_tools",
            "supports_vision",
            "supports_json",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            price = price_in_force(self.instance)
            if price is not None:
                self.initial.update({name: getattr(price, name) for name in RATE_FIELDS})

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        long_rates = ("long_input_per_1m", "long_output_per_1m", "long_cached_input_per_1m")
        if cleaned.get("long_context_threshold") is None and any(
            cleaned.get(n) is not None for n in long_rates
        ):
            self.add_error("long_context_threshold", "Long-context rates need a threshold.")
        return cleaned

    def clean_aliases(self) -> list[str]:
        aliases = self.cleaned_data.get("aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
            raise forms.ValidationError('Aliases are a JSON list of names, e.g. ["claude-sonnet-4.5"].')
        return [a.strip() for a in aliases]


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    form = ModelForm
    list_display = (
        "model_id",
        "provider",
        "display_name",
        "kind",
        "context_window",
        "max_output_tokens",
        "active",
        "deprecation_date",
    )
    list_filter = ("provider", "kind", "active", "supports_tools", "supports_vision", "supports_json")
    search_fields = ("model_id", "display_name")
    inlines = [PriceHistoryInline]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "provider",
                    "model_id",
                    "display_name",
                    "kind",
                    "aliases",
                    "active",
                    "deprecation_date",
                )
            },
        ),
        (
            "Limits and capabilities",
            {
                "fields": (
                    "context_window",
                    "max_output_tokens",
                    "supports_tools",
                    "supports_vision",
                    "supports_json",
                )
            },
        ),
        (
            "Price in force (a change adds a new row from now on)",
            {"fields": RATE_FIELDS},
        ),
    )

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        data = form.cleaned_data
        model_price_set(
            model=obj,
            **{name: data.get(name) for name in RATE_FIELDS},
            source="admin",
            created_by=request.user,
        )
        catalog_invalidate()


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    """History is read-only: rows are never edited or deleted, since logged requests point at them."""

    list_display = (
        "model",
        "effective_from",
        "input_per_1m",
        "cached_input_per_1m",
        "output_per_1m",
        "cache_write_5m_per_1m",
        "cache_write_1h_per_1m",
        "long_context_threshold",
        "source",
    )
    list_filter = ("source", "model__provider")
    search_fields = ("model__model_id",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
