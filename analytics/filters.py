"""The request-log filters shared by the analytics API and the dashboard's requests page (django-filter)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_date, parse_datetime

from routing.models import GatewayRequest
from routing.pipeline.types import DOORS

MAX_SEARCH_LENGTH = 200
MIN_YEAR, MAX_YEAR = 1970, 9000  # far from datetime's limits, so a day can be added without overflow
DOOR_CHOICES = [(door, door) for door in DOORS]
KEY_PREFIX_MAX_LENGTH = 16

# The filters the rollups answer too, and the lookup each one is: the same on the log and on DailyUsage.
SHARED_LOOKUPS = {
    "model": "model",
    "provider": "provider",
    "door": "door",
    "team": "api_key__team_id",
    "api_key": "api_key_id",
    "key": "api_key__prefix",
}


def shared_filters(values: Mapping[str, Any]) -> Q:
    """The WHERE of the shared filters among validated `values` (absent or empty ones don't filter)."""
    where = Q()
    for name, lookup in SHARED_LOOKUPS.items():
        value = values.get(name)
        if value is not None and value != "":
            where &= Q(**{lookup: value})
    return where


class DateOrDateTimeField(forms.Field):
    """Accepts YYYY-MM-DD (a whole UTC day) or an ISO 8601 date-time; a naive date-time is taken as UTC."""

    def to_python(self, value: Any) -> date | datetime | None:
        if value in (None, ""):
            return None
        text = str(value).strip()
        try:
            # parse_date first: Python's fromisoformat (inside parse_datetime) reads a bare date as midnight.
            parsed: date | datetime | None = parse_date(text) or parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise ValidationError("Enter a date (YYYY-MM-DD) or an ISO 8601 date-time.", code="invalid")
        if not MIN_YEAR <= parsed.year <= MAX_YEAR:
            raise ValidationError(f"Enter a date between {MIN_YEAR} and {MAX_YEAR}.", code="out_of_range")
        if isinstance(parsed, datetime) and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed


class DateOrDateTimeFilter(django_filters.Filter):
    field_class = DateOrDateTimeField


class IdFilter(django_filters.Filter):
    """A positive integer id (a team's, a key's); anything else is a form error, so a 400."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        super().__init__(*args, **kwargs)


def _start_of(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.combine(value, time.min, tzinfo=UTC)


def _end_of(value: date | datetime) -> datetime:
    """Exclusive end: a date includes that whole day."""
    return value if isinstance(value, datetime) else _start_of(value + timedelta(days=1))


class RequestFilterForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start_date"), data.get("end_date")
        if start is not None and end is not None:
            # A date end includes its whole day (exclusive bound _end_of); a date-time end is inclusive.
            empty = _start_of(start) > end if isinstance(end, datetime) else _start_of(start) >= _end_of(end)
            if empty:
                self.add_error("start_date", "start_date must not be after end_date.")
        return data


class RequestFilter(django_filters.FilterSet):
    model = django_filters.CharFilter(field_name="model", max_length=128)
    provider = django_filters.CharFilter(field_name="provider", max_length=32)
    status = django_filters.ChoiceFilter(field_name="status", choices=GatewayRequest.Status.choices)
    door = django_filters.ChoiceFilter(field_name="door", choices=DOOR_CHOICES)
    team = IdFilter(field_name=SHARED_LOOKUPS["team"])
    api_key = IdFilter(field_name=SHARED_LOOKUPS["api_key"])
    key = django_filters.CharFilter(field_name=SHARED_LOOKUPS["key"], max_length=KEY_PREFIX_MAX_LENGTH)
    cached = django_filters.BooleanFilter(field_name="cached")
    search = django_filters.CharFilter(method="filter_search", max_length=MAX_SEARCH_LENGTH)
    start_date = DateOrDateTimeFilter(method="filter_start")
    end_date = DateOrDateTimeFilter(method="filter_end")

    class Meta:
        model = GatewayRequest
        fields: list[str] = []
        form = RequestFilterForm

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Case-insensitive substring of the prompt, the model id or the provider name (trigram-indexed)."""
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(prompt_text__icontains=value) | Q(model__icontains=value) | Q(provider__icontains=value)
        )

    def filter_start(self, queryset: QuerySet, name: str, value: date | datetime) -> QuerySet:
        return queryset.filter(created_at__gte=_start_of(value))

    def filter_end(self, queryset: QuerySet, name: str, value: date | datetime) -> QuerySet:
        """A date includes that whole day; a date-time is an inclusive upper bound."""
        if isinstance(value, datetime):
            return queryset.filter(created_at__lte=value)
        return queryset.filter(created_at__lt=_end_of(value))
