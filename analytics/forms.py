"""Dashboard forms: the compare playground, one's own budget limit, and a new API key."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

MAX_PROMPT_LENGTH = 20_000


class CompareForm(forms.Form):
    models = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, choices=[])
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), max_length=MAX_PROMPT_LENGTH)
    temperature = forms.DecimalField(required=False, min_value=0, max_value=2, decimal_places=2)
    max_tokens = forms.IntegerField(required=False, min_value=1, max_value=32_768)

    def __init__(self, *args: Any, model_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["models"].choices = model_choices  # type: ignore[attr-defined]

    def clean_models(self) -> list[str]:
        chosen: list[str] = self.cleaned_data["models"]
        if not 2 <= len(chosen) <= 10:
            raise forms.ValidationError("Pick between 2 and 10 models.")
        return chosen


PERIOD_CHOICES = [("daily", "Daily"), ("weekly", "Weekly"), ("monthly", "Monthly"), ("lifetime", "Lifetime")]


class LimitField(forms.DecimalField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", "Limit (USD)")
        super().__init__(required=False, min_value=Decimal(0), max_digits=20, decimal_places=10, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        """A stored limit as a person typed it: 25, not the column's 25.0000000000."""
        if isinstance(value, Decimal) and value.is_finite():
            return format(value.normalize(), "f")
        return super().prepare_value(value)


class BudgetWindowForm(forms.Form):
    """One's own limit on one of one's windows: one's user's ("user") or a personal key's ("key:<id>").

    Saving needs a limit (an empty one is an error, never "unlimited" by accident); "remove" takes it off.
    """

    target = forms.ChoiceField(required=False)
    period = forms.ChoiceField(choices=PERIOD_CHOICES, required=False)
    limit_usd = LimitField()
    remove = forms.BooleanField(required=False)

    def __init__(self, *args: Any, keys: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [  # type: ignore[attr-defined]
            ("user", "You (your personal keys)"),
            *((f"key:{pk}", f"Key {name}") for pk, name in keys),
        ]

    def clean_target(self) -> str:
        return self.cleaned_data.get("target") or "user"

    def clean_period(self) -> str:
        return self.cleaned_data.get("period") or "monthly"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("remove") and data.get("limit_usd") is None and "limit_usd" not in self.errors:
            self.add_error("limit_usd", "Enter a limit, or remove it.")
        return data

    @property
    def api_key_id(self) -> int | None:
        target = self.cleaned_data["target"]
        return int(target.split(":", 1)[1]) if target.startswith("key:") else None


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, initial="default")
    expires_in_days = forms.IntegerField(
        required=False, min_value=1, max_value=3650, label="Expires in (days)", help_text="Empty: never."
    )
    team = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="For")

    def __init__(self, *args: Any, teams: list[tuple[int, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [  # type: ignore[attr-defined]
            ("", "Me (a personal key)"),
            *((pk, f"Team {name}") for pk, name in teams or []),
        ]


class KeyLimitForm(forms.Form):
    """A key's own daily or monthly limit; saving needs a limit, "remove" takes it off."""

    period = forms.ChoiceField(choices=[("daily", "Daily"), ("monthly", "Monthly")])
    limit_usd = LimitField()
    remove = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("remove") and data.get("limit_usd") is None and "limit_usd" not in self.errors:
            self.add_error("limit_usd", "Enter a limit, or remove it.")
        return data


class OverviewFilterForm(forms.Form):
    """The overview's team and key filters (the request log's are analytics.filters.RequestFilter's)."""

    team = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    api_key = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Key")

    def __init__(
        self, *args: Any, teams: list[tuple[int, str]], keys: list[tuple[int, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "All teams"), *teams]  # type: ignore[attr-defined]
        self.fields["api_key"].choices = [("", "All keys"), *keys]  # type: ignore[attr-defined]


# --- teams (staff's forms, but the team's create)


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=100)


class TeamMemberAddForm(forms.Form):
    username = forms.CharField(max_length=150, label="Username")


class TeamWindowForm(forms.Form):
    """A team window's limits for one period; saving needs at least one, "remove" takes the window off."""

    period = forms.ChoiceField(choices=PERIOD_CHOICES, initial="monthly")
    own_limit_usd = LimitField(label="Team limit (USD)")
    admin_limit_usd = LimitField(label="Admin limit (USD)")
    remove = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        limits = (data.get("own_limit_usd"), data.get("admin_limit_usd"))
        if not data.get("remove") and limits == (None, None) and not self.errors:
            self.add_error(None, "Enter a limit, or remove the window.")
        return data


class TeamRateLimitsForm(forms.Form):
    rate_limit_rpm = forms.IntegerField(
        required=False, min_value=1, max_value=10_000_000, label="Requests / min"
    )
    rate_limit_tpm = forms.IntegerField(
        required=False, min_value=1, max_value=2_000_000_000, label="Tokens / min"
    )


class TeamWebhookForm(forms.Form):
    webhook_url = forms.URLField(required=False, max_length=200, assume_scheme="https", label="Webhook URL")
    new_secret = forms.BooleanField(required=False, label="Generate a new signing secret")
